"""packager.io audio: any common format in, float32 mono at 16 kHz out."""

from __future__ import annotations

import base64
import io
import wave

import numpy as np
import pytest
import soundfile
from pydantic import BaseModel, ValidationError

import packager.io as pio
from packager._errors import InputError
from packager.io import _audio


def _tone(freq: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _encoded(samples: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def _peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.argmax(spectrum) * rate / len(samples))


@pytest.mark.parametrize(
    ("fmt", "subtype"), [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", None), ("OGG", "VORBIS")]
)
def test_formats_decode_to_16k_mono_float32_keeping_the_pitch(fmt: str, subtype: str | None) -> None:
    data = _encoded(_tone(440, 44_100), 44_100, fmt, subtype)
    samples = pio.decode_audio(base64.b64encode(data).decode())
    assert samples.dtype == np.float32
    assert samples.ndim == 1
    assert abs(len(samples) - 16_000) <= 1
    assert abs(_peak_hz(samples, 16_000) - 440) < 2
    assert 0.45 < float(np.abs(samples[1000:-1000]).max()) < 0.55


def test_stereo_is_averaged_to_mono() -> None:
    left, right = _tone(300, 16_000), np.zeros(16_000, dtype=np.float32)
    samples = pio.decode_audio(_encoded(np.stack([left, right], axis=1), 16_000, "WAV", "FLOAT"))
    np.testing.assert_allclose(samples, left / 2, atol=1e-6)


def test_resampling_is_band_limited_and_keeps_the_length_ratio() -> None:
    up = _audio.resample(_tone(1000, 8_000), 8_000, 16_000)
    assert len(up) == 16_000
    assert abs(_peak_hz(up, 16_000) - 1000) < 2
    down = _audio.resample(_tone(11_000, 48_000) + _tone(500, 48_000), 48_000, 16_000)
    spectrum = np.abs(np.fft.rfft(down))  # 1 s long: bin i is i Hz
    assert abs(_peak_hz(down, 16_000) - 500) < 2
    assert spectrum[5_000] < 1e-3 * spectrum[500]  # 11 kHz is above 8 kHz: removed, not aliased to 5 kHz


def test_the_standard_library_reads_pcm_wav_when_soundfile_cannot() -> None:
    buffer = io.BytesIO()
    pcm = (_tone(200, 8_000) * 32767).astype("<i2")
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8_000)
        writer.writeframes(pcm.tobytes())
    samples, rate = _audio._wave(buffer.getvalue())  # type: ignore[misc]
    assert rate == 8_000
    np.testing.assert_allclose(samples, _tone(200, 8_000), atol=1e-4)


def test_an_array_is_taken_as_already_decoded() -> None:
    out = pio.decode_audio(np.zeros(5, dtype=np.float64))
    assert out.dtype == np.float32
    assert out.shape == (5,)
    with pytest.raises(InputError, match="1-D float samples"):
        pio.decode_audio(np.zeros((2, 2)), field="clip")


def test_what_is_not_audio_is_an_input_error_naming_the_field() -> None:
    with pytest.raises(InputError) as caught:
        pio.decode_audio(base64.b64encode(b"definitely not audio").decode(), field="speech")
    assert caught.value.errors[0]["loc"] == ["speech"]
    assert "is not audio that can be decoded" in caught.value.errors[0]["msg"]


class _Request(BaseModel):
    audio: pio.AudioInput


def test_audio_input_validates_and_carries_the_file_hints() -> None:
    data = base64.b64encode(_encoded(_tone(440, 22_050), 22_050, "WAV")).decode()
    assert _Request.model_validate({"audio": data}).audio.shape == (16_000,)
    with pytest.raises(ValidationError) as caught:
        _Request.model_validate({"audio": "bm9wZQ=="})
    assert caught.value.errors()[0]["loc"] == ("audio",)
    prop = _Request.model_json_schema()["properties"]["audio"]
    assert (prop["contentEncoding"], prop["contentMediaType"]) == ("base64", "audio/*")
