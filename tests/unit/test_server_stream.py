"""Streaming models in-process: SSE events, joined answers, failures mid-stream, disconnects."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from test_server_app import run, serving, until

from packager._pipeline import Pipeline
from packager._server import create_app
from packager._spec_load import read_package

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "serving"
SSE = {"accept": "text/event-stream"}


def events(text: str) -> list[tuple[str, str]]:
    out = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((fields.get("event", "message"), fields["data"]))
    return out


def test_sse_sends_one_event_per_chunk_then_done() -> None:
    async def test() -> None:
        async with serving("stream") as (_, client):
            response = await client.post("/v1/models/stream:predict", json={"n": 3}, headers=SSE)
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream"
            assert response.headers["x-request-id"]
            assert events(response.text) == [
                ("message", '"tok0 "'),
                ("message", '"tok1 "'),
                ("message", '"tok2 "'),
                ("done", "{}"),
            ]

    run(test)


def test_without_sse_text_chunks_are_joined_and_others_listed() -> None:
    async def test() -> None:
        async with serving("stream") as (_, client):
            text = await client.post("/v1/models/stream:predict", json={"n": 3})
            assert text.json() == "tok0 tok1 tok2 "
        async with serving("async_stream") as (_, client):
            listed = await client.post("/v1/models/async-stream:predict", json={"n": 3})
            assert listed.json() == [{"i": 0}, {"i": 1}, {"i": 2}]
            sse = await client.post("/v1/models/async-stream:predict", json={"n": 2}, headers=SSE)
            assert events(sse.text) == [("message", '{"i":0}'), ("message", '{"i":1}'), ("done", "{}")]

    run(test)


def test_failure_mid_stream_ends_with_an_error_event_and_frees_the_slot() -> None:
    async def test() -> None:
        async with serving("stream") as (app, client):
            response = await client.post(
                "/v1/models/stream:predict", json={"n": 5, "fail_at": 2}, headers=SSE
            )
            got = events(response.text)
            assert got[:2] == [("message", '"tok0 "'), ("message", '"tok1 "')]
            kind, data = got[2]
            assert kind == "error"
            assert "boom at 2" in data
            assert '"status":500' in data
            assert "Traceback" not in response.text
            joined = await client.post("/v1/models/stream:predict", json={"n": 5, "fail_at": 2})
            assert joined.status_code == 500
            again = await client.post("/v1/models/stream:predict", json={"n": 1})
            assert again.json() == "tok0 "
            assert app.state.waiting == 0

    run(test)


def test_stream_past_the_timeout_ends_with_a_504_event() -> None:
    async def test() -> None:
        async with serving("stream") as (app, client):
            app.deadlines.seconds = 0.3
            body = {"n": 1000, "delay": 0.02}
            response = await client.post("/v1/models/stream:predict", json=body, headers=SSE)
            kind, data = events(response.text)[-1]
            assert kind == "error"
            assert '"status":504' in data
            joined = await client.post("/v1/models/stream:predict", json=body)
            assert joined.status_code == 504
            app.deadlines.seconds = 60
            assert (await client.post("/v1/models/stream:predict", json={"n": 1})).json() == "tok0 "

    run(test)


@pytest.mark.parametrize("fixture", ["stream", "async_stream"])
def test_client_disconnect_cancels_the_response_and_closes_the_generator(
    tmp_path: Path, fixture: str
) -> None:
    """Drive the app with a hand-made receive() that reports a disconnect after two chunks."""

    async def test() -> None:
        app = create_app(Pipeline(read_package(FIXTURES / fixture)))
        await app.startup()
        await app.wait_loaded()
        marker = tmp_path / "marker"
        name = app.name
        body = b'{"n": 100000, "delay": 0.001, "marker": "%s"}' % str(marker).encode()
        scope = {
            "type": "http",
            "method": "POST",
            "path": f"/v1/models/{name}:predict",
            "headers": [(b"accept", b"text/event-stream")],
        }
        chunks: list[bytes] = []
        gone = asyncio.Event()
        bodies = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            if bodies:
                return bodies.pop()
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                chunks.append(message["body"])
                if len(chunks) == 2:
                    gone.set()

        await asyncio.wait_for(app(scope, receive, send), 60)
        model_cls = type(app.pipeline.model)
        if fixture == "stream":
            await until(lambda: marker.exists() and "closed" in marker.read_text())
        else:
            await until(lambda: model_cls.closed == 1)
        assert app.metrics.statuses == {499: 1}
        assert app.inflight == 0
        await app.shutdown()

    run(test)


@pytest.mark.parametrize("fixture", ["stream", "async_stream"])
def test_client_leaving_a_joined_stream_closes_the_generator_and_counts_499(
    tmp_path: Path, fixture: str
) -> None:
    """No SSE asked: the chunks are being joined when receive() reports the client gone."""

    async def test() -> None:
        app = create_app(Pipeline(read_package(FIXTURES / fixture)))
        await app.startup()
        await app.wait_loaded()
        model_cls = type(app.pipeline.model)
        model_cls.closed = 0
        marker = tmp_path / "marker"
        body = b'{"n": 100000, "delay": 0.001, "marker": "%s"}' % str(marker).encode()
        scope = {"type": "http", "method": "POST", "path": f"/v1/models/{app.name}:predict", "headers": []}
        sent: list[dict[str, Any]] = []
        bodies = [{"type": "http.request", "body": body, "more_body": False}]
        leave = asyncio.Event()
        leave.set()

        async def receive() -> dict[str, Any]:
            if bodies:
                return bodies.pop()
            await leave.wait()
            await asyncio.sleep(0.2)  # some chunks in, long before the 100000th
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await asyncio.wait_for(app(scope, receive, send), 60)
        if fixture == "stream":
            await until(lambda: marker.exists() and "closed" in marker.read_text())
        else:
            await until(lambda: model_cls.closed == 1)
        assert app.metrics.statuses == {499: 1}
        assert app.inflight == 0
        assert app.state.waiting == 0
        # predict_concurrency is 1: this only answers if the slot was given back
        again = {"type": "http.request", "body": b'{"n": 2}', "more_body": False}
        sent.clear()
        leave.clear()
        bodies.append(again)
        await asyncio.wait_for(app(scope, receive, send), 60)
        assert sent[0]["status"] == 200
        await app.shutdown()

    run(test)
