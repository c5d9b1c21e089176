"""Audio in (base64, data URI, URL, bytes, Path) -> float32 mono numpy array at 16 kHz.

Decoding uses soundfile (libsndfile, bundled in its wheel: WAV, FLAC, OGG/Vorbis, Opus, MP3),
then ffmpeg when it is on PATH (any other format: M4A, WebM, ...), then the standard library's
`wave` for PCM WAV when soundfile is not installed. Resampling is band-limited (FFT), in numpy.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from packager.io._source import DecodeError, fail, source_bytes

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

SAMPLE_RATE = 16_000
_FFMPEG_TIMEOUT_S = 120

AUDIO_SCHEMA: dict[str, Any] = {
    "type": "string",
    "contentEncoding": "base64",
    "contentMediaType": "audio/*",
    "description": "Audio (WAV, FLAC, OGG, MP3, ...): base64, a data: URI or an http(s) URL",
}


def decode_audio(
    value: Any, *, field: str = "audio", sample_rate: int = SAMPLE_RATE
) -> npt.NDArray[np.float32]:
    """A float32 mono array at `sample_rate` from base64, a data URI, a URL, bytes or a Path.

    A 1-D numpy array is taken as already decoded at `sample_rate`. Anything that is not
    audio raises InputError naming `field`.
    """
    try:
        return audio_from(value, sample_rate=sample_rate)
    except DecodeError as exc:
        fail(field, str(exc))


def audio_from(value: Any, *, sample_rate: int = SAMPLE_RATE) -> npt.NDArray[np.float32]:
    """As `decode_audio`, raising DecodeError (a ValueError) instead of InputError."""
    import numpy as np

    if isinstance(value, np.ndarray):
        if value.ndim != 1 or value.dtype.kind != "f":
            raise DecodeError(f"an array must be 1-D float samples, got shape {value.shape} {value.dtype}")
        return value.astype(np.float32, copy=True)
    data = source_bytes(value)
    samples, rate = _decode(data)
    if samples.size == 0:
        raise DecodeError("audio has no samples")
    return resample(samples, rate, sample_rate)


def _decode(data: bytes) -> tuple[npt.NDArray[np.float32], int]:
    errors: list[str] = []
    for decoder in (_soundfile, _ffmpeg, _wave):
        try:
            result = decoder(data)
        except DecodeError as exc:
            errors.append(str(exc))
            continue
        if result is not None:
            return result
    detail = "; ".join(errors) or "no decoder for it"
    raise DecodeError(f"is not audio that can be decoded ({len(data)} bytes starting {data[:8]!r}: {detail})")


def _soundfile(data: bytes) -> tuple[npt.NDArray[np.float32], int] | None:
    try:
        import soundfile  # type: ignore[import-untyped]
    except (ImportError, OSError):
        return None
    try:
        frames, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise DecodeError(f"soundfile: {exc}") from None
    return frames.mean(axis=1, dtype="float32"), int(rate)


def _ffmpeg(data: bytes) -> tuple[npt.NDArray[np.float32], int] | None:
    import numpy as np

    binary = shutil.which("ffmpeg")
    if binary is None:
        return None
    command = [binary, "-nostdin", "-loglevel", "error", "-i", "pipe:0"]
    command += ["-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE), "pipe:1"]
    try:
        done = subprocess.run(
            command, input=data, capture_output=True, timeout=_FFMPEG_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DecodeError(f"ffmpeg: {exc}") from None
    if done.returncode != 0:
        raise DecodeError(f"ffmpeg: {done.stderr.decode(errors='replace').strip()[-200:]}")
    return np.frombuffer(done.stdout, dtype="<f4").astype(np.float32), SAMPLE_RATE


def _wave(data: bytes) -> tuple[npt.NDArray[np.float32], int] | None:
    import numpy as np

    try:
        with wave.open(io.BytesIO(data)) as reader:
            width, channels, rate = reader.getsampwidth(), reader.getnchannels(), reader.getframerate()
            raw = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as exc:
        raise DecodeError(f"wave: {exc}") from None
    if width == 1:
        ints = np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0
    elif width in (2, 4):
        ints = np.frombuffer(raw, dtype=f"<i{width}").astype(np.float32)
    else:
        raise DecodeError(f"wave: {8 * width}-bit PCM needs soundfile")
    scale = float(2 ** (8 * width - 1))
    return (ints.reshape(-1, channels).mean(axis=1) / scale).astype(np.float32), rate


def resample(samples: npt.NDArray[np.float32], rate: int, target: int) -> npt.NDArray[np.float32]:
    """`samples` at `rate` resampled to `target` Hz, band-limited (FFT), as float32."""
    import numpy as np

    if rate == target:
        return np.ascontiguousarray(samples, dtype=np.float32)
    count = max(1, round(len(samples) * target / rate))
    spectrum = np.fft.rfft(samples.astype(np.float64))
    keep = min(len(spectrum), count // 2 + 1)
    out = np.fft.irfft(spectrum[:keep], n=count) * (count / len(samples))
    return out.astype(np.float32)


def _validate(value: Any) -> Any:
    try:
        return audio_from(value)
    except DecodeError as exc:
        raise PydanticCustomError("audio", str(exc)) from None


if TYPE_CHECKING:
    AudioInput = npt.NDArray[np.float32]
else:
    AudioInput = Annotated[Any, PlainValidator(_validate), WithJsonSchema(AUDIO_SCHEMA)]
"""An input field that validates into float32 mono samples at 16 kHz (`SAMPLE_RATE`)."""
