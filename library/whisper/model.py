"""Speech to text with OpenAI's Whisper (openai-whisper), any size from tiny to large-v3.

The size is the checkpoint named by the spec's weights source (package.yaml): one of OpenAI's
published `.pt` files, pinned by its sha256; README.md lists every size's line. The model reads
the one `*.pt` in its weights folder, so pointing `weights_dir` (or $PACKAGER_WEIGHTS_DIR) at a
folder holding `whisper/<size>.pt` runs any checkpoint with no code change.

Loading: the checkpoint's tensors are mapped straight onto the device (`torch.load` with
`mmap=True, map_location=device`) and assigned to a model built on the meta device, so no second
copy is made; fp16 on a GPU (layer norms in fp32, as Whisper computes them), fp32 on a CPU.
Attention uses PyTorch's scaled_dot_product_attention (openai-whisper's default). Set
PACKAGER_TORCH_COMPILE=1 to compile the audio encoder with torch.compile (off by default).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

import packager
from packager.io import SAMPLE_RATE, AudioInput

WEIGHTS = "whisper"  # the `dir` of the weights source in package.yaml
SECONDS_PER_WINDOW = 30  # Whisper hears 30 s at a time; language detection uses the first window


class TranscribeRequest(BaseModel):
    """One recording and how to decode it."""

    model_config = ConfigDict(extra="forbid")

    audio: AudioInput = Field(
        description="The recording: base64, a data: URI or an http(s) URL (WAV, FLAC, MP3, ...)."
    )
    task: Literal["transcribe", "translate"] = Field(
        "transcribe", description="'transcribe' keeps the spoken language; 'translate' gives English text."
    )
    language: Optional[str] = Field(
        None, description="Spoken language as a code ('en') or name ('english'); detected when omitted."
    )
    word_timestamps: bool = Field(False, description="Add each word's start and end time to its segment.")
    beam_size: Optional[int] = Field(None, ge=1, le=10, description="Beam search width; greedy when omitted.")
    initial_prompt: Optional[str] = Field(
        None, max_length=1000, description="Text to prime the first window."
    )

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: Optional[str]) -> Optional[str]:
        return None if value is None else language_code(value)


class Word(TypedDict):
    word: str
    start: float
    end: float
    probability: float


class Segment(TypedDict):
    """A stretch of speech; times in seconds from the start; `words` None unless asked for."""

    id: int
    start: float
    end: float
    text: str
    words: Optional[list[Word]]


class Transcription(TypedDict):
    """`language_probability` is None unless the language was detected; `model` is the checkpoint's name."""

    text: str
    language: str
    language_probability: Optional[float]
    segments: list[Segment]
    duration: float
    task: str
    model: str


def language_code(value: str) -> str:
    """The Whisper language code for a code or a name; ValueError (422 on `language`) otherwise."""
    from whisper.tokenizer import LANGUAGES, TO_LANGUAGE_CODE

    key = value.strip().lower()
    if key in LANGUAGES:
        return key
    if key in TO_LANGUAGE_CODE:
        return TO_LANGUAGE_CODE[key]
    raise ValueError(
        f"unknown language {value!r}; use a code such as 'en', 'de', 'fr' or a name such as 'german'"
    )


class Model:
    def __init__(self, device: str, weights: dict[str, Path]) -> None:
        self.device = device
        self.folder = weights.get(WEIGHTS)
        self.name = ""
        self.whisper: Any = None

    def load(self) -> None:
        from whisper.tokenizer import get_tokenizer

        checkpoint = find_checkpoint(self.folder)
        self.name = checkpoint.stem
        self.whisper = load_whisper(checkpoint, self.device)
        with warnings.catch_warnings():  # openai-whisper leaves its vocabulary file open: read it once, here
            warnings.simplefilter("ignore", ResourceWarning)
            get_tokenizer(self.whisper.is_multilingual, num_languages=self.whisper.num_languages)
        if os.environ.get("PACKAGER_TORCH_COMPILE", "").strip() in ("1", "true", "yes"):
            self.whisper.encoder.compile()  # fixed 30 s windows: one graph

    def predict(self, inputs: TranscribeRequest) -> Transcription:
        import torch

        english_only = not self.whisper.is_multilingual
        check_task(inputs, english_only)
        audio = inputs.audio
        language, probability = ("en", None) if english_only else (inputs.language, None)
        with torch.inference_mode():
            if language is None:
                language, probability = self._detect(audio)
            result = self.whisper.transcribe(
                audio,
                task=inputs.task,
                language=language,
                word_timestamps=inputs.word_timestamps,
                beam_size=inputs.beam_size,
                initial_prompt=inputs.initial_prompt,
                fp16=self.device.startswith("cuda"),
                verbose=None,
            )
        return {
            "text": result["text"].strip(),
            "language": language,
            "language_probability": probability,
            "segments": [segment_of(raw, inputs.word_timestamps) for raw in result["segments"]],
            "duration": round(len(audio) / SAMPLE_RATE, 3),
            "task": inputs.task,
            "model": self.name,
        }

    def _detect(self, audio: Any) -> tuple[str, float]:
        """The most likely language of the first 30 s, and its probability."""
        import whisper

        window = whisper.pad_or_trim(audio, SECONDS_PER_WINDOW * SAMPLE_RATE)
        mel = whisper.log_mel_spectrogram(window, self.whisper.dims.n_mels, device=self.whisper.device)
        mel = mel.to(next(self.whisper.decoder.parameters()).dtype)
        _, probs = self.whisper.detect_language(mel)
        code = max(probs, key=probs.get)
        return code, round(float(probs[code]), 4)


def check_task(inputs: TranscribeRequest, english_only: bool) -> None:
    """An English-only checkpoint (*.en) can neither translate nor hear another language."""
    if not english_only:
        return
    if inputs.task == "translate":
        _reject("task", "this checkpoint is English-only (*.en); use a multilingual size to translate")
    if inputs.language not in (None, "en"):
        _reject(
            "language", f"this checkpoint is English-only (*.en); it cannot transcribe {inputs.language!r}"
        )


def _reject(field: str, message: str) -> None:
    raise packager.InputError(
        f"input is invalid: {field}: {message}", [{"loc": [field], "msg": message, "type": "value_error"}]
    )


def segment_of(raw: dict[str, Any], with_words: bool) -> Segment:
    words = None
    if with_words:
        words = [
            {
                "word": w["word"],
                "start": round(float(w["start"]), 3),
                "end": round(float(w["end"]), 3),
                "probability": round(float(w["probability"]), 4),
            }
            for w in raw.get("words", [])
        ]
    return {
        "id": int(raw["id"]),
        "start": round(float(raw["start"]), 3),
        "end": round(float(raw["end"]), 3),
        "text": raw["text"].strip(),
        "words": words,
    }


def find_checkpoint(folder: Optional[Path]) -> Path:
    """The one `*.pt` in the weights folder; a clear error when there is none or several."""
    where = folder if folder is not None else Path(f"<weights>/{WEIGHTS}")
    found = sorted(folder.glob("*.pt")) if folder is not None and folder.is_dir() else []
    if len(found) != 1:
        what = (
            "no *.pt checkpoint"
            if not found
            else f"{len(found)} checkpoints ({', '.join(p.name for p in found)})"
        )
        raise FileNotFoundError(
            f"{where} holds {what}; run `pkg weights` for the spec's whisper source, "
            "or point PACKAGER_WEIGHTS_DIR at a folder holding whisper/<size>.pt"
        )
    return found[0]


def load_whisper(path: Path, device: str) -> Any:
    """openai-whisper's model from `path`, its tensors loaded straight onto `device`."""
    import torch
    import whisper
    from whisper.model import AudioEncoder, ModelDimensions, TextDecoder, Whisper

    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True, mmap=True)
    except RuntimeError:  # a checkpoint in torch's legacy (non-zip) format cannot be memory-mapped
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    dims = ModelDimensions(**checkpoint["dims"])
    model = Whisper.__new__(Whisper)  # Whisper(dims) without allocating weights (and no meta to_sparse)
    torch.nn.Module.__init__(model)
    model.dims = dims
    with torch.device("meta"):
        model.encoder = AudioEncoder(
            dims.n_mels, dims.n_audio_ctx, dims.n_audio_state, dims.n_audio_head, dims.n_audio_layer
        )
        model.decoder = TextDecoder(
            dims.n_vocab, dims.n_text_ctx, dims.n_text_state, dims.n_text_head, dims.n_text_layer
        )
    model.load_state_dict(checkpoint["model_state_dict"], assign=True)
    # The buffers a checkpoint does not hold (the decoder's causal mask, the alignment heads) are
    # still on the meta device: build them for real.
    causal = torch.empty(dims.n_text_ctx, dims.n_text_ctx, device=device).fill_(-float("inf")).triu_(1)
    model.decoder.register_buffer("mask", causal, persistent=False)
    heads = whisper._ALIGNMENT_HEADS.get(path.stem)
    if heads is not None:
        model.set_alignment_heads(heads)
    else:  # Whisper's default for unknown checkpoints: every head of the second half of the layers
        mask = torch.zeros(dims.n_text_layer, dims.n_text_head, dtype=torch.bool)
        mask[dims.n_text_layer // 2 :] = True
        model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
    return set_precision(model, device).eval()


def set_precision(model: Any, device: str) -> Any:
    """fp16 weights on a GPU with layer norms in fp32 (as Whisper computes them); fp32 on a CPU."""
    from whisper.model import LayerNorm

    if not device.startswith("cuda"):
        return model.float()
    model.half()
    for module in model.modules():
        if isinstance(module, LayerNorm):
            module.float()
    return model
