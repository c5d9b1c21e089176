"""`packager.io`: decode the images and audio a request carries, encode images for the response.

Catalogue entries (library/) and your own models share these so every package accepts the same
inputs and fails the same way::

    from pydantic import BaseModel
    from packager.io import AudioInput, ImageInput, encode_image

    class Request(BaseModel):
        image: ImageInput          # base64, data URI or http(s) URL -> a PIL image
        audio: AudioInput | None = None   # -> float32 mono numpy array at 16 kHz

    ...
    return {"image": encode_image(result)}   # PNG, base64

Accepted values: a base64 string, a ``data:`` URI, an ``http(s)://`` URL (fetched with a size
limit and a timeout), raw ``bytes``, a ``pathlib.Path`` (in Python only: a string is never read
as a path, so an HTTP client cannot make the server read its files), and for images a PIL
image as is. Every failure raises `InputError` naming the field (HTTP 422, never 500).

PIL and numpy are imported on first use, so importing this module stays light. docs/io.md has
the reference.
"""

from __future__ import annotations

from packager.io._audio import SAMPLE_RATE, AudioInput, decode_audio
from packager.io._chat import (
    ChatMessage,
    ChatRequest,
    Chunk,
    Completion,
    CompletionRequest,
    Sampling,
    Usage,
)
from packager.io._images import ImageInput, decode_image, encode_image, image_data_uri
from packager.io._source import MAX_BYTES, read_bytes

__all__ = [
    "MAX_BYTES",
    "SAMPLE_RATE",
    "AudioInput",
    "ChatMessage",
    "ChatRequest",
    "Chunk",
    "Completion",
    "CompletionRequest",
    "ImageInput",
    "Sampling",
    "Usage",
    "decode_audio",
    "decode_image",
    "encode_image",
    "image_data_uri",
    "read_bytes",
]
