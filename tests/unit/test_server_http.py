"""HTTP edges of the app: awkward output numbers, encoded and slow bodies, HEAD requests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest

from packager._errors import PackagerError
from packager._pipeline import Pipeline
from packager._server import create_app
from packager._server._app import App
from packager._spec_load import read_package

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "serving"


@contextlib.asynccontextmanager
async def serving(name: str) -> AsyncIterator[tuple[App, httpx.AsyncClient]]:
    app = create_app(Pipeline(read_package(FIXTURES / name)))
    await app.startup()
    await app.wait_loaded()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
            yield app, client
    finally:
        await app.shutdown()


# -- numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("nan", "output['scores'][1] is NaN, which JSON cannot carry"),
        ("inf_array", "output['x'] is a numpy array holding Infinity at index [1, 0]"),
        ("tuple_key", "output['pairs'] has a key of type tuple ((1, 2)), but JSON object keys are text"),
    ],
)
def test_outputs_json_cannot_carry_are_a_500_naming_the_value(kind: str, message: str) -> None:
    async def test() -> None:
        async with serving("numbers") as (_, client):
            response = await client.post("/v1/models/numbers:predict", json={"kind": kind})
            assert response.status_code == 500
            assert response.json()["error"].startswith(f"the model's output cannot be encoded: {message}")
            assert (await client.post("/v1/models/numbers:predict", json={"kind": "none"})).json() == {
                "missing": None
            }

    asyncio.run(test())


def test_integers_over_64_bits_are_answered_as_json_numbers_and_refused_in_msgpack() -> None:
    async def test() -> None:
        async with serving("numbers") as (_, client):
            response = await client.post("/v1/models/numbers:predict", json={"kind": "big"})
            assert response.status_code == 200
            assert json.loads(response.content) == {"n": 2**70, "neg": [-(2**65)]}
            packed = await client.post(
                "/v1/models/numbers:predict",
                content=msgpack.packb({"kind": "big"}),
                headers={"content-type": "application/msgpack"},
            )
            assert packed.status_code == 500
            assert (
                "output['n'] holds an integer over 64 bits, which msgpack cannot carry"
                in packed.json()["error"]
            )
            nan = await client.post(
                "/v1/models/numbers:predict", json={"kind": "nan"}, headers={"accept": "application/msgpack"}
            )
            assert nan.status_code == 200  # msgpack has NaN
            assert msgpack.unpackb(nan.content)["scores"][0] == 0.5

    asyncio.run(test())


# -- request bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/models/echo:predict", "/v2/models/echo/infer"])
@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate, gzip"])
def test_encoded_bodies_are_415_naming_the_encoding(path: str, encoding: str) -> None:
    async def test() -> None:
        async with serving("echo") as (_, client):
            response = await client.post(path, content=b"\x1f\x8b...", headers={"content-encoding": encoding})
            assert response.status_code == 415
            assert f"Content-Encoding {encoding!r} are not accepted" in response.json()["error"]
            assert response.headers["accept-encoding"] == "identity"
            plain = await client.post(
                "/v1/models/echo:predict", json={"a": 1}, headers={"content-encoding": "identity"}
            )
            assert plain.json() == {"a": 1}

    asyncio.run(test())


async def _call(
    app: App, receive: Any, path: str = "/v1/models/echo:predict"
) -> tuple[int, dict[str, Any], float]:
    """Call the app with a raw ASGI receive; (status, JSON body, seconds taken)."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(b"content-type", b"application/json")],
    }
    started = time.monotonic()
    await asyncio.wait_for(app(scope, receive, send), 30)
    taken = time.monotonic() - started
    headers = dict(sent[0]["headers"])
    assert headers[b"connection"] == b"close"
    return sent[0]["status"], json.loads(sent[1]["body"]), taken


def test_a_body_that_stalls_or_dribbles_gets_408_after_the_body_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PACKAGER_BODY_TIMEOUT_S", "0.3")

    async def stalled() -> dict[str, Any]:
        await asyncio.Event().wait()  # headers came, the body never does
        raise AssertionError

    chunks = iter([b'{"a": ', b"1"] + [b" "] * 1000)

    async def dribbling() -> dict[str, Any]:
        await asyncio.sleep(0.05)  # a byte now and then, never the end
        return {"type": "http.request", "body": next(chunks), "more_body": True}

    async def test() -> None:
        async with serving("echo") as (app, client):
            for receive in (stalled, dribbling):
                status, body, taken = await _call(app, receive)
                assert status == 408
                assert "did not arrive within 0.3s" in body["error"]
                assert taken < 10
            status, _, _ = await _call(app, stalled, "/v2/models/echo/infer")
            assert status == 408
            assert (await client.post("/v1/models/echo:predict", json={"b": 2})).json() == {"b": 2}

    asyncio.run(test())


def test_a_body_in_several_parts_within_the_timeout_is_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACKAGER_BODY_TIMEOUT_S", "20")
    parts = [b'{"a"', b": [1, ", b"2]}"]

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"type": "http.request", "body": parts.pop(0), "more_body": bool(parts)}

    async def test() -> None:
        async with serving("echo") as (app, _):
            sent: list[dict[str, Any]] = []

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            scope = {"type": "http", "method": "POST", "path": "/v1/models/echo:predict", "headers": []}
            await app(scope, receive, send)
            assert (sent[0]["status"], json.loads(sent[1]["body"])) == (200, {"a": [1, 2]})

    asyncio.run(test())


@pytest.mark.parametrize("value", ["lots", "-5", "0"])
def test_a_bad_body_timeout_is_a_clear_error(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACKAGER_BODY_TIMEOUT_S", value)
    with pytest.raises(PackagerError, match=f"PACKAGER_BODY_TIMEOUT_S='{value}' is not a number of seconds"):
        create_app(Pipeline(read_package(FIXTURES / "echo")))


# -- HEAD --------------------------------------------------------------------------------------


def test_head_answers_every_get_endpoint_with_its_status_and_headers_and_no_body() -> None:
    async def test() -> None:
        async with serving("typed") as (app, client):
            gets = [path for path, (methods, _) in app._routes.items() if "GET" in methods]
            assert len(gets) >= 11
            for path in gets:
                got, head = await client.get(path), await client.head(path)
                redirect = path == "/playground"  # to playground/ (docs/playground.md)
                assert head.status_code == got.status_code == (303 if redirect else 200), path
                assert head.content == b"", path
                if path == "/metrics":  # live numbers (process CPU, memory): only the header's presence
                    assert int(head.headers["content-length"]) > 0, path
                else:
                    assert head.headers["content-length"] == str(len(got.content)), path
                assert head.headers["content-type"] == got.headers["content-type"], path
            missing = await client.head("/nope")
            assert (missing.status_code, missing.content) == (404, b"")
            wrong = await client.delete("/v1/models/typed")
            assert wrong.headers["allow"] == "GET, HEAD"

    asyncio.run(test())
