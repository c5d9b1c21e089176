"""packager.io: bytes from base64 / data URIs / URLs / paths, and images in and out."""

from __future__ import annotations

import base64
import http.server
import io
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from PIL import Image
from pydantic import BaseModel, ValidationError

import packager.io as pio
from packager._errors import InputError


def _png(size: tuple[int, int] = (5, 3), colour: tuple[int, int, int] = (200, 10, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {}

    def do_GET(self) -> None:
        status, headers, body = self.routes.get(self.path, (404, {}, b"missing"))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    _Handler.routes = {
        "/cat.png": (200, {"Content-Type": "image/png"}, _png((7, 4))),
        "/moved": (302, {"Location": "/cat.png"}, b""),
        "/to-file": (302, {"Location": "file:///etc/hostname"}, b""),
        "/big": (200, {}, b"x" * 5000),
    }
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_bytes_come_from_base64_urlsafe_base64_data_uris_bytes_and_paths(tmp_path: Path) -> None:
    data = bytes(range(256)) * 3
    text = base64.b64encode(data).decode()
    assert pio.read_bytes(text) == data
    assert pio.read_bytes(text.rstrip("=")) == data  # padding is optional
    assert pio.read_bytes(f"  {text[:40]}\n{text[40:]} ") == data  # line breaks, as base64(1) writes
    assert pio.read_bytes(base64.urlsafe_b64encode(data).decode()) == data
    assert pio.read_bytes(f"data:application/octet-stream;base64,{text}") == data
    assert pio.read_bytes("data:text/plain,a%20b") == b"a b"
    assert pio.read_bytes(data) == data
    (tmp_path / "f.bin").write_bytes(data)
    assert pio.read_bytes(tmp_path / "f.bin") == data


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("not base64!", "is not valid base64, a data: URI or an http(s) URL"),
        ("", "is empty"),
        ("file:///etc/passwd", "URL scheme 'file' is not supported"),
        ("./cat.png", "is not valid base64"),  # a string is never read as a path
        (12, "expected a base64 string, a data URI or a URL, got int"),
        ("data:image/png;base64", "data: URI has no ','"),
    ],
)
def test_bad_values_are_input_errors_naming_the_field(value: object, why: str) -> None:
    with pytest.raises(InputError) as caught:
        pio.read_bytes(value, field="photo")
    assert caught.value.status_code == 422
    assert caught.value.errors[0]["loc"] == ["photo"]
    assert why in caught.value.errors[0]["msg"]
    assert str(caught.value).startswith("input is invalid: photo: ")


def test_the_size_limit_holds_for_every_source(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="more than the limit of 10"):
        pio.read_bytes(base64.b64encode(b"y" * 11).decode(), max_bytes=10)
    with pytest.raises(InputError, match="URL body is 5000 bytes, more than the limit of 4096"):
        pio.read_bytes(f"{server}/big", max_bytes=4096)
    monkeypatch.setenv("PACKAGER_IO_MAX_BYTES", "100")
    with pytest.raises(InputError, match="limit of 100 \\(PACKAGER_IO_MAX_BYTES\\)"):
        pio.read_bytes(b"z" * 101)


def test_urls_are_fetched_following_http_redirects_only(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert pio.decode_image(f"{server}/cat.png").size == (7, 4)
    assert pio.decode_image(f"{server}/moved").size == (7, 4)
    with pytest.raises(InputError, match=r"could not fetch .*/to-file: HTTP 302"):
        pio.read_bytes(f"{server}/to-file")  # never follows a redirect to file://
    with pytest.raises(InputError, match=r"could not fetch .*/nothing: HTTP 404"):
        pio.read_bytes(f"{server}/nothing")
    monkeypatch.setenv("PACKAGER_IO_URLS", "0")
    with pytest.raises(InputError, match="URL inputs are turned off"):
        pio.read_bytes(f"{server}/cat.png")


def test_an_unreachable_url_fails_within_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACKAGER_IO_URL_TIMEOUT_S", "2")
    with pytest.raises(InputError, match="could not fetch"):
        pio.read_bytes("http://127.0.0.1:9/x.png")  # the discard port: refused at once


def test_images_decode_to_rgb_and_encode_to_png_base64() -> None:
    grey = io.BytesIO()
    Image.new("L", (4, 2), 99).save(grey, format="JPEG")
    image = pio.decode_image(base64.b64encode(grey.getvalue()).decode())
    assert (image.mode, image.size) == ("RGB", (4, 2))
    assert pio.decode_image(grey.getvalue(), mode=None).mode == "L"
    encoded = pio.encode_image(Image.new("RGB", (3, 3), (1, 2, 3)))
    back = Image.open(io.BytesIO(base64.b64decode(encoded)))
    assert back.format == "PNG"
    assert back.getpixel((1, 1)) == (1, 2, 3)
    assert pio.image_data_uri(back).startswith("data:image/png;base64,iVBOR")


def test_a_path_like_string_is_never_read_from_disk(tmp_path: Path) -> None:
    (tmp_path / "cat").write_bytes(_png())
    with pytest.raises(InputError, match="is not an image PIL can read"):
        pio.decode_image(str(tmp_path / "cat"))  # decoded as base64, not opened
    assert pio.decode_image(tmp_path / "cat").size == (5, 3)  # a Path (Python callers only) is


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: a 4x2 JPEG shown as 2x4
    buffer = io.BytesIO()
    Image.new("RGB", (4, 2)).save(buffer, format="JPEG", exif=exif)
    assert pio.decode_image(buffer.getvalue()).size == (2, 4)


def test_not_an_image_or_a_truncated_one_is_an_input_error() -> None:
    with pytest.raises(InputError, match="image: is not an image PIL can read"):
        pio.decode_image(base64.b64encode(b"hello world").decode())
    with pytest.raises(InputError, match="damaged or truncated"):
        pio.decode_image(_png((64, 64))[:60])


class _Request(BaseModel):
    image: pio.ImageInput
    more: list[pio.ImageInput] = []


def test_image_input_validates_into_a_pil_image_and_names_the_field() -> None:
    png = base64.b64encode(_png()).decode()
    request = _Request.model_validate({"image": png, "more": [f"data:image/png;base64,{png}"]})
    assert isinstance(request.image, Image.Image)
    assert request.more[0].size == (5, 3)
    with pytest.raises(ValidationError) as caught:
        _Request.model_validate({"image": png, "more": [png, "bad"]})
    error = caught.value.errors()[0]
    assert error["loc"] == ("more", 1)
    assert error["type"] == "image"
    assert request.model_dump(mode="json")["image"].startswith("iVBOR")


def test_image_input_schema_carries_the_file_hints_the_cli_and_playground_read() -> None:
    prop = _Request.model_json_schema()["properties"]["image"]
    assert prop["contentEncoding"] == "base64"
    assert prop["contentMediaType"] == "image/*"
    assert prop["type"] == "string"


def test_importing_packager_io_loads_neither_pil_nor_numpy() -> None:
    code = "import sys, packager.io; print('PIL' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
