"""Images in (base64, data URI, URL, bytes, Path, PIL image) and out (PNG as base64)."""

from __future__ import annotations

import base64
import io
import warnings
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from packager.io._source import DecodeError, fail, source_bytes

if TYPE_CHECKING:
    from PIL import Image as _PIL

IMAGE_SCHEMA: dict[str, Any] = {
    "type": "string",
    "contentEncoding": "base64",
    "contentMediaType": "image/*",
    "description": "An image (PNG, JPEG, WebP, ...): base64, a data: URI or an http(s) URL",
}


def decode_image(value: Any, *, field: str = "image", mode: str | None = "RGB") -> _PIL.Image:
    """A PIL image from base64, a data URI, an http(s) URL, bytes, a Path or a PIL image.

    The image is loaded, turned upright by its EXIF orientation and converted to `mode`
    (``None`` keeps its own). Anything that is not an image raises InputError naming `field`.
    """
    try:
        return image_from(value, mode=mode)
    except DecodeError as exc:
        fail(field, str(exc))


def image_from(value: Any, *, mode: str | None = "RGB") -> _PIL.Image:
    """As `decode_image`, raising DecodeError (a ValueError) instead of InputError."""
    from PIL import Image, ImageOps

    if isinstance(value, Image.Image):
        image = value
    else:
        image = _open(source_bytes(value))
        image = ImageOps.exif_transpose(image) or image
    if mode is not None and image.mode != mode:
        image = image.convert(mode)
    return image


def _open(data: bytes) -> _PIL.Image:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise DecodeError(f"image is larger than {Image.MAX_IMAGE_PIXELS} pixels") from None
    except UnidentifiedImageError:
        raise DecodeError(f"is not an image PIL can read ({_sniff(data)})") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise DecodeError(f"image is damaged or truncated: {exc}") from None
    return image


def _sniff(data: bytes) -> str:
    return f"{len(data)} bytes starting {data[:8]!r}"


def encode_image(image: Any, format: str = "PNG") -> str:
    """`image` (a PIL image, or an HxW / HxWxC uint8 numpy array) encoded as `format`, in base64."""
    return base64.b64encode(image_bytes(image, format)).decode("ascii")


def image_data_uri(image: Any, format: str = "PNG") -> str:
    """`image` as a ``data:image/...;base64,`` URI (browsers and the playground show it)."""
    return f"data:image/{format.lower()};base64,{encode_image(image, format)}"


def image_bytes(image: Any, format: str = "PNG") -> bytes:
    """`image` (PIL image or uint8 array) encoded as `format`."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


def _validate(value: Any) -> Any:
    try:
        return image_from(value)
    except DecodeError as exc:
        raise PydanticCustomError("image", str(exc)) from None


def _serialize(image: Any) -> str:
    return encode_image(image)


if TYPE_CHECKING:
    ImageInput = _PIL.Image
else:
    ImageInput = Annotated[
        Any,
        PlainValidator(_validate),
        PlainSerializer(_serialize, when_used="json"),
        WithJsonSchema(IMAGE_SCHEMA),
    ]
"""An input field that validates into an RGB PIL image (base64, data URI or http(s) URL in)."""
