"""The playground in a real headless Chromium against `pkg serve` on 127.0.0.1 (marker `browser`)."""

from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
import yaml

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture fails (CI) or skips each test
    expect = None

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "browser"
SCREENSHOT = ROOT / "docs" / "img" / "playground.png"


def field(page: Any, name: str, selector: str = ".control") -> Any:
    return page.locator(f'[data-field="{name}"] {selector}')


def open_playground(page: Any, url: str) -> None:
    page.goto(url + "/")  # a browser asking for `/` is sent to the playground
    page.wait_for_selector("body[data-ready]")
    assert urlsplit(page.url).path == "/playground/"


def output_json(page: Any) -> Any:
    page.wait_for_selector("#output pre.json")
    return json.loads(page.inner_text("#output pre.json"))


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = (b"\x00" + b"\x20\x60\xc0" * width) * height
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_typed_form_runs_and_its_snippets_give_the_same_answer(serve: Any, page: Any, tmp_path: Path) -> None:
    server = serve("typed", "echo-form")
    open_playground(page, server.url)
    assert page.inner_text("#model-name") == "echo-form"
    assert field(page, "times").get_attribute("min") == "1"
    assert field(page, "times").get_attribute("max") == "5"
    assert field(page, "voice", "option").all_inner_texts() == ["plain", "loud", "quiet"]
    assert field(page, "exclaim").get_attribute("type") == "checkbox"
    field(page, "text").fill("ping")
    field(page, "times").fill("3")
    field(page, "voice").select_option(label="quiet")
    field(page, "exclaim").check()
    field(page, "tags").fill('["x", "y"]')
    page.click("#submit")
    shown = output_json(page)
    assert shown == {"said": " ".join(["ping"] * 3) + "!", "tags": ["x", "y"], "note": None}
    page.screenshot(path=str(tmp_path / "typed.png"), full_page=True)
    if os.environ.get("PACKAGER_WRITE_SCREENSHOT") == "1":  # refresh the README's picture
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))
    python = page.inner_text("#snippet-python")
    assert f'packager.connect("{server.url}")' in python
    ran = subprocess.run([sys.executable, "-c", python], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert eval(ran.stdout) == shown  # the snippet prints the dict's repr
    curl = page.inner_text("#snippet-curl")
    ran = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=60)
    assert json.loads(ran.stdout) == shown


def test_an_llm_gets_an_openai_client_snippet_that_runs(serve: Any, page: Any) -> None:
    server = serve("../serving/fake_llm", "fake-llm")  # runtime.openai: [chat, completion]
    open_playground(page, server.url)
    field(page, "messages").fill('[{"role": "user", "content": "ping pong"}]')
    field(page, "max_tokens").fill("3")
    page.click("#submit")
    shown = output_json(page)
    assert shown["text"] == " ping pong ping"
    snippet = page.inner_text("#snippet-openai")
    assert "client.chat.completions.create(" in snippet
    assert f'base_url="{server.url}/v1"' in snippet
    ran = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == shown["text"] + "\n"  # the OpenAI route gives what the form got


def test_a_model_without_openai_routes_gets_no_openai_snippet(serve: Any, page: Any) -> None:
    server = serve("typed", "echo-form")
    open_playground(page, server.url)
    field(page, "text").fill("ping")
    page.click("#submit")
    output_json(page)
    assert page.locator("#snippet-openai").count() == 0


def test_example_is_one_click_away(serve: Any, page: Any) -> None:
    example = yaml.safe_load((FIXTURES / "typed" / "package.yaml").read_text())["examples"][0]
    server = serve("typed", "echo-form")
    open_playground(page, server.url)
    page.click(f'button[data-example="{example["name"]}"]')
    assert field(page, "text").input_value() == example["input"]["text"]
    assert field(page, "exclaim").is_checked() is example["input"]["exclaim"]
    assert json.loads(field(page, "tags").input_value()) == example["input"]["tags"]
    page.click("#submit")
    assert output_json(page) == example["output"]
    page.click("#reset")
    assert field(page, "text").input_value() == ""
    assert field(page, "times").input_value() == "2"  # the schema's default


def test_a_422_shows_the_error_next_to_its_field(serve: Any, page: Any) -> None:
    server = serve("typed", "echo-form")
    open_playground(page, server.url)
    field(page, "text").fill("a")
    field(page, "times").fill("9")  # the bound is le=5; the browser does not stop it, the server does
    page.click("#submit")
    page.wait_for_selector('[data-field="times"].invalid')
    assert "less than or equal to 5" in field(page, "times", ".field-error").inner_text()
    assert field(page, "text", ".field-error").inner_text() == ""
    assert page.inner_text("#output").startswith("422")
    field(page, "times").fill("1")
    field(page, "tags").fill("[not json")  # caught in the page, nothing is sent
    page.click("#submit")
    assert "not valid JSON" in field(page, "tags", ".field-error").inner_text()
    assert field(page, "times", ".field-error").inner_text() == ""


def test_an_uploaded_image_comes_back_as_an_image(serve: Any, page: Any, tmp_path: Path) -> None:
    picture = tmp_path / "tiny.png"
    picture.write_bytes(png(3, 2))
    server = serve("image", "image-double")
    open_playground(page, server.url)
    upload = field(page, "image")
    assert upload.get_attribute("type") == "file"
    assert upload.get_attribute("accept") == "image/*"
    upload.set_input_files(str(picture))
    expect(page.locator(".file-status")).to_contain_text("tiny.png")
    page.click("#submit")
    image = page.locator("#output figure img")
    expect(image).to_have_js_property("complete", True)
    handle = image.element_handle()
    size = (
        handle.get_property("naturalWidth").json_value(),
        handle.get_property("naturalHeight").json_value(),
    )
    assert size == (6, 4)  # the model answers a PNG twice the size of the one sent
    shown = output_json(page)
    assert (shown["width"], shown["height"]) == (3, 2)
    assert shown["image"].startswith("<image/png")  # base64 elided in the JSON, shown as a picture
    page.screenshot(path=str(tmp_path / "image.png"), full_page=True)


def test_streamed_tokens_appear_one_by_one(serve: Any, page: Any) -> None:
    server = serve("stream", "slow-words")
    open_playground(page, server.url)
    field(page, "prompt").fill("t")
    field(page, "tokens").fill("6")
    field(page, "delay_s").fill("0.4")
    page.click("#submit")
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "done" not in page.inner_text("#output-meta"):
        text = page.inner_text("#output pre.stream") if page.locator("#output pre.stream").count() else ""
        if text and (not seen or text != seen[-1]):
            seen.append(text)
        time.sleep(0.05)
    final = "".join(f"t-{i} " for i in range(6)).strip()
    assert page.inner_text("#output pre.stream").strip() == final
    assert page.inner_text("#output-meta").startswith("6 chunks, done")
    partial = [s for s in seen if s.strip() != final]
    assert len(partial) >= 3, seen  # the output grew while the model was still streaming
    for before, after in zip(seen, seen[1:]):
        assert after.startswith(before)
        assert len(after) > len(before)
    assert "accept: text/event-stream" in page.inner_text("#snippet-curl")


def test_the_page_asks_for_the_api_key_once(serve: Any, page: Any) -> None:
    key = base64.urlsafe_b64encode(os.urandom(12)).decode()
    server = serve("guarded", "guarded", PACKAGER_SECRET_API_KEY=key)
    page.goto(server.url + "/playground")
    page.wait_for_selector("#key-dialog[open]")
    page.fill("#key-input", "wrong-key")
    page.click("#key-submit")
    expect(page.locator("#key-message")).to_contain_text("refused")
    assert page.is_visible("#key-dialog")
    page.fill("#key-input", key)
    page.click("#key-submit")
    page.wait_for_selector("body[data-ready]")
    field(page, "name").fill("you")
    page.click("#submit")
    assert output_json(page) == {"greeting": "hello you"}
    assert not page.is_visible("#key-dialog")  # asked once: predict reused the key
    curl = page.inner_text("#snippet-curl")
    assert "$PACKAGER_API_KEY" in curl
    assert key not in curl
    assert key not in page.content()
    page.reload()
    page.wait_for_selector("body[data-ready]")  # the key is kept for the tab's session
    assert not page.is_visible("#key-dialog")


def test_the_openapi_document_is_browsable(serve: Any, page: Any) -> None:
    server = serve("typed", "echo-form")
    open_playground(page, server.url)
    page.click('.tab[data-tab="api"]')
    page.wait_for_selector("#endpoints details")
    summaries = page.locator("#endpoints summary").all_inner_texts()
    assert any("POST" in s and "/v1/models/echo-form:predict" in s for s in summaries), summaries
    page.locator("#endpoints summary", has_text="/v1/models/echo-form:predict").click()
    assert '"operationId": "predict"' in page.inner_text("#endpoints details[open] pre")


def test_works_under_a_path_prefix(serve: Any, page: Any) -> None:
    """A reverse proxy serving the server under /team/echo/: every request the page makes must
    stay under the prefix (relative URLs), so the proxy (here Playwright's router) can strip it."""
    server = serve("typed", "echo-form")
    prefix = "/team/echo"
    outside: list[str] = []

    def proxy(route: Any) -> None:
        parts = urlsplit(route.request.url)
        if not parts.path.startswith(prefix + "/"):
            outside.append(route.request.url)
            route.abort()
            return
        target = server.url + parts.path[len(prefix) :] + (f"?{parts.query}" if parts.query else "")
        route.fulfill(response=route.fetch(url=target, max_redirects=0))

    page.route(f"{server.url}/**", proxy)
    # The proxy forwards `/`'s redirect as is (Playwright's router does not see redirected requests,
    # so the browser cannot follow it here): its Location is relative, so it keeps the prefix.
    location = httpx.get(server.url + "/", headers={"accept": "text/html"}).headers["location"]
    assert urljoin(f"{server.url}{prefix}/", location) == f"{server.url}{prefix}/playground/"
    page.goto(f"{server.url}{prefix}/playground/")
    page.wait_for_selector("body[data-ready]")
    field(page, "text").fill("behind")
    page.click("#submit")
    assert output_json(page)["said"] == "behind behind"
    assert page.wait_for_selector("#model-status.ready")
    assert f"{prefix}/v1/models/echo-form:predict" in page.inner_text("#snippet-curl")
    assert outside == []
