"""Draws a square PNG of one colour, with nothing but the standard library (zlib, struct)."""

import struct
import zlib

from pydantic import BaseModel, Field


class Request(BaseModel):
    color: str = Field("#ff8800", pattern=r"^#[0-9a-fA-F]{6}$", description="Fill colour, #rrggbb.")
    size: int = Field(32, ge=1, le=512, description="Width and height in pixels.")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


class Model:
    def predict(self, inputs: Request) -> bytes:
        rgb = bytes.fromhex(inputs.color[1:])
        rows = b"".join(b"\x00" + rgb * inputs.size for _ in range(inputs.size))
        header = struct.pack(">IIBBBBB", inputs.size, inputs.size, 8, 2, 0, 0, 0)
        pixels = _chunk(b"IDAT", zlib.compress(rows))
        return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + pixels + _chunk(b"IEND", b"")
