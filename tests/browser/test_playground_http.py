"""The playground's routes over HTTP, in-process (no browser needed: these run everywhere)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from packager._pipeline import Pipeline
from packager._server import create_app
from packager._server._playground import STATIC, prefers_html
from packager._spec_load import read_package

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "browser"
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
ASSETS = [("", "text/html"), ("playground.js", "text/javascript"), ("playground.css", "text/css")]


@contextlib.asynccontextmanager
async def client(package: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Pipeline(read_package(FIXTURES / package)))
    await app.startup()
    await app.wait_loaded()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http
    finally:
        await app.shutdown()


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (FIREFOX, True),
        ("text/html", True),
        ("*/*", False),
        ("", False),
        ("application/json", False),
        ("application/json, text/html;q=0.5", False),
        ("text/html;q=0.2, application/json;q=0.1", True),
        ("text/html;q=0", False),
        ("text/html, application/json", False),  # a tie keeps the JSON answer
    ],
)
def test_prefers_html(accept: str, html: bool) -> None:
    assert prefers_html(accept.encode()) is html


def test_root_sends_browsers_to_the_playground_and_keeps_json_for_the_rest() -> None:
    async def test() -> None:
        async with client("typed") as http:
            browser = await http.get("/", headers={"accept": FIREFOX})
            assert browser.status_code == 303
            assert browser.headers["location"] == "playground/"  # relative: keeps a proxy's prefix
            assert browser.headers["vary"] == "accept"
            for accept in ("*/*", "application/json"):
                plain = await http.get("/", headers={"accept": accept})
                assert (plain.status_code, plain.json()) == (200, {"status": "alive", "live": True})
            bare = await http.get("/playground")
            assert (bare.status_code, bare.headers["location"]) == (303, "playground/")

    asyncio.run(test())


def test_assets_have_their_types_and_revalidate_with_etags() -> None:
    async def test() -> None:
        async with client("typed") as http:
            for name, kind in ASSETS:
                answer = await http.get(f"/playground/{name}")
                assert answer.status_code == 200
                assert answer.headers["content-type"].split(";")[0] == kind
                assert answer.content == (STATIC / (name or "index.html")).read_bytes()
                assert answer.headers["cache-control"] == "no-cache"
                again = await http.get(
                    f"/playground/{name}", headers={"if-none-match": answer.headers["etag"]}
                )
                assert (again.status_code, again.content) == (304, b"")
                head = await http.head(f"/playground/{name}")
                assert head.headers["content-length"] == str(len(answer.content))
                assert head.content == b""
            page = await http.get("/playground/")
            assert "script-src 'self'" in page.headers["content-security-policy"]

    asyncio.run(test())


def test_page_uses_relative_urls_only() -> None:
    page = (STATIC / "index.html").read_text()
    script = (STATIC / "playground.js").read_text()
    for text in (page, script):
        assert "http://" not in text
        assert "https://" not in text
    for attribute in ('href="/', 'src="/', '"/v1', '"/openapi'):
        assert attribute not in page
        assert attribute not in script


def test_model_json_describes_the_form() -> None:
    async def test() -> None:
        async with client("stream") as http:
            info = (await http.get("/playground/model.json")).json()
            schema = (await http.get("/v1/models/slow-words/schema")).json()
        spec = read_package(FIXTURES / "stream").spec
        assert info["name"] == spec.name
        assert info["input"] == schema["input"]
        assert info["streaming"] is True
        assert info["examples"] == [{"name": e.name, "input": e.input} for e in spec.examples]
        assert info["predict"] == "v1/models/slow-words:predict"  # relative to the server's root
        assert info["api_key"] is False

    asyncio.run(test())


def test_with_an_api_key_only_the_static_files_are_public(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACKAGER_SECRET_API_KEY", "k3y-for-tests")

    async def test() -> None:
        async with client("guarded") as http:
            for name, _ in ASSETS:
                assert (await http.get(f"/playground/{name}")).status_code == 200
            assert (await http.get("/playground")).status_code == 303
            assert (await http.get("/playground/model.json")).status_code == 401
            assert (await http.post("/v1/models/guarded:predict", json={"name": "x"})).status_code == 401
            keyed = await http.get(
                "/playground/model.json", headers={"authorization": "Bearer k3y-for-tests"}
            )
            assert (keyed.status_code, keyed.json()["api_key"]) == (200, True)
            assert (await http.get("/playground/nothing.js")).status_code == 401  # not a public file

    asyncio.run(test())
