"""The ASGI app in-process (httpx.ASGITransport): every endpoint and every error path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import msgpack
import numpy as np
import pytest

from packager._errors import ModelLoadError
from packager._pipeline import Pipeline
from packager._server import create_app
from packager._server._app import App
from packager._server._codec import decode_msgpack, encode_msgpack
from packager._spec_load import read_package

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "serving"
Client = httpx.AsyncClient


@contextlib.asynccontextmanager
async def serving(name: str, *, load: bool = True, **options: Any) -> AsyncIterator[tuple[App, Client]]:
    app = create_app(Pipeline(read_package(FIXTURES / name)), autoload=load, **options)
    await app.startup()
    if load:
        await app.wait_loaded()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as client:
            yield app, client
    finally:
        await app.shutdown()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait for `condition` (no timing assertion: the timeout only guards against a hang)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition never became true"
        await asyncio.sleep(0.005)


# -- liveness, readiness, listing ------------------------------------------------------------


def test_liveness_answers_while_loading_and_readiness_waits_for_the_model() -> None:
    async def test() -> None:
        async with serving("echo", load=False) as (app, client):
            assert (await client.get("/")).status_code == 200
            loading = await client.get("/v1/models/echo")
            assert loading.status_code == 503
            assert loading.json()["error"] == "the model is loading"
            early = await client.post("/v1/models/echo:predict", json={"a": 1})
            assert early.status_code == 503
            assert early.headers["retry-after"] == "1"
            assert "not loaded" in early.json()["error"]
            app.start_loading()
            await app.wait_loaded()
            ready = await client.get("/v1/models/echo")
            assert (ready.status_code, ready.json()) == (200, {"name": "echo", "ready": True})
            assert (await client.get("/v1/models")).json()["models"] == ["echo"]
            assert (await client.get("/v2/health/ready")).status_code == 200
            assert (await client.get("/v2/health/live")).status_code == 200

    run(test)


def test_failed_load_keeps_readiness_503_and_predict_503() -> None:
    async def test() -> None:
        async with serving("failing_load", load=False) as (app, client):
            app.start_loading()
            with pytest.raises(ModelLoadError, match="weights are corrupt"):
                await app.wait_loaded()
            ready = await client.get("/v1/models/failing-load")
            assert ready.status_code == 503
            assert "failed to load" in ready.json()["error"]
            assert (await client.post("/v1/models/failing-load:predict", json={})).status_code == 503
            assert (await client.get("/")).status_code == 200

    run(test)


@pytest.mark.parametrize(("healthy", "status"), [(True, 200), (False, 503), ("raise", 503)])
def test_readiness_asks_is_healthy(healthy: object, status: int) -> None:
    async def test() -> None:
        async with serving("health") as (app, client):
            type(app.pipeline.model).healthy = healthy
            response = await client.get("/v1/models/health")
            assert response.status_code == status
            assert (await client.get("/v2/models/health/ready")).status_code == status

    run(test)


# -- predict: encodings ----------------------------------------------------------------------


def test_json_round_trip_and_request_id_echoed_or_generated() -> None:
    async def test() -> None:
        async with serving("echo") as (_, client):
            body = {"text": "héllo", "n": [1, 2.5, None, True], "nested": {"k": "v"}}
            given = await client.post(
                "/v1/models/echo:predict", json=body, headers={"x-request-id": "abc-123"}
            )
            assert given.status_code == 200
            assert given.json() == body
            assert given.headers["x-request-id"] == "abc-123"
            assert given.headers["content-type"] == "application/json"
            fresh = [await client.post("/v1/models/echo:predict", json=1) for _ in range(2)]
            ids = {r.headers["x-request-id"] for r in fresh}
            assert len(ids) == 2
            assert all(ids)

    run(test)


def test_body_without_json_content_type_is_still_json() -> None:
    async def test() -> None:
        async with serving("echo") as (_, client):
            response = await client.post(
                "/v1/models/echo:predict",
                content=b'{"a": 1}',
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert response.json() == {"a": 1}

    run(test)


def test_msgpack_keeps_bytes_and_numpy_arrays() -> None:
    async def test() -> None:
        async with serving("numpy_model") as (_, client):
            array = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]  # not contiguous
            body = encode_msgpack({"array": array, "blob": b"\x00\xff"})
            response = await client.post(
                "/v1/models/numpy-model:predict",
                content=body,
                headers={"content-type": "application/msgpack"},
            )
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/msgpack"
            out = decode_msgpack(response.content)
            assert out["blob"] == b"\x00\xff"
            assert out["array"].dtype == np.float32
            np.testing.assert_array_equal(out["array"], array * 2)
            assert out["scalar"] == 1.5

    run(test)


def test_accept_chooses_the_answer_encoding() -> None:
    async def test() -> None:
        async with serving("numpy_model") as (_, client):
            url = "/v1/models/numpy-model:predict"
            packed = await client.post(url, json={"array": [1, 2]}, headers={"accept": "application/msgpack"})
            np.testing.assert_array_equal(decode_msgpack(packed.content)["array"], [2, 4])
            body = msgpack.packb({"array": [1, 2]})
            as_json = await client.post(
                url,
                content=body,
                headers={"content-type": "application/msgpack", "accept": "application/json"},
            )
            assert as_json.json() == {"array": [2, 4], "blob": None, "scalar": 1.5}

    run(test)


# -- predict: errors -------------------------------------------------------------------------


def test_typed_input_errors_are_422_with_every_field() -> None:
    async def test() -> None:
        async with serving("typed") as (_, client):
            ok = await client.post("/v1/models/typed:predict", json={"text": "hi", "repeat": 2})
            assert ok.json() == {"text": "hi hi", "length": 5}
            bad = await client.post("/v1/models/typed:predict", json={"repeat": 9, "tags": "x"})
            assert bad.status_code == 422
            body = bad.json()
            assert {tuple(e["loc"]) for e in body["errors"]} == {("text",), ("repeat",), ("tags",)}
            assert all(set(e) == {"loc", "msg", "type"} for e in body["errors"])
            assert body["error"].startswith("input is invalid")
            assert body["request_id"] == bad.headers["x-request-id"]

    run(test)


@pytest.mark.parametrize(
    ("method", "path", "status", "needle"),
    [
        ("POST", "/v1/models/nope:predict", 404, "no model named 'nope'"),
        ("GET", "/v1/models/nope", 404, "no model named 'nope'"),
        ("POST", "/v2/models/nope/infer", 404, "no model named 'nope'"),
        ("GET", "/nowhere", 404, "no such endpoint"),
        ("GET", "/v1/models/echo:predict", 405, "GET is not allowed"),
        ("DELETE", "/v1/models/echo", 405, "DELETE is not allowed"),
        ("POST", "/", 405, "POST is not allowed"),
    ],
)
def test_unknown_paths_and_methods_answer_json(method: str, path: str, status: int, needle: str) -> None:
    async def test() -> None:
        async with serving("echo") as (_, client):
            response = await client.request(method, path, json={})
            assert response.status_code == status
            assert response.headers["content-type"] == "application/json"
            assert needle in response.json()["error"]
            if status == 405:
                assert response.headers["allow"]

    run(test)


@pytest.mark.parametrize(
    ("body", "content_type", "needle"),
    [
        (b"{not json", "application/json", "not valid JSON"),
        (b"", "application/json", "not valid JSON"),
        (b"\xc1\xc1", "application/msgpack", "not valid msgpack"),
        (b"\x92\x01", "application/x-msgpack", "not valid msgpack"),
        (b"\xc7\x03\x01abc", "application/msgpack", "not valid msgpack"),
    ],
)
def test_undecodable_bodies_are_400(body: bytes, content_type: str, needle: str) -> None:
    async def test() -> None:
        async with serving("echo") as (_, client):
            response = await client.post(
                "/v1/models/echo:predict", content=body, headers={"content-type": content_type}
            )
            assert response.status_code == 400
            assert needle in response.json()["error"]

    run(test)


def test_body_over_the_cap_is_413() -> None:
    async def test() -> None:
        async with serving("echo", max_body_bytes=100) as (_, client):
            small = await client.post("/v1/models/echo:predict", json="x" * 50)
            assert small.status_code == 200
            big = await client.post("/v1/models/echo:predict", json="x" * 200)
            assert big.status_code == 413
            assert "larger than 100 bytes" in big.json()["error"]

    run(test)


def test_model_exception_is_500_without_traceback_and_the_next_request_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def test() -> None:
        async with serving("sleepy") as (_, client):
            with caplog.at_level(logging.ERROR, logger="packager"):
                failed = await client.post("/v1/models/sleepy:predict", json={"fail": True})
            assert failed.status_code == 500
            body = failed.json()
            assert set(body) == {"error", "request_id"}
            assert "ValueError" in body["error"]
            assert "Traceback" not in failed.text
            assert "model.py" not in failed.text
            record = next(r for r in caplog.records if r.levelno == logging.ERROR)
            assert record.exc_info is not None
            assert getattr(record, "request_id", None) == body["request_id"]
            ok = await client.post("/v1/models/sleepy:predict", json={})
            assert (ok.status_code, ok.json()) == (200, {"ok": True})

    run(test)


def test_request_past_the_timeout_is_504_and_the_slot_is_held_until_the_thread_ends() -> None:
    async def test() -> None:
        async with serving("sleepy") as (app, client):
            model_cls = type(app.pipeline.model)
            late = await client.post("/v1/models/sleepy:predict", json={"block": True})
            assert late.status_code == 504
            assert "request_timeout_s" in late.json()["error"]
            # The blocked predict still runs: with predict_concurrency 1 the next call cannot run
            # beside it; it is refused at once (503, retry) rather than timing out too.
            refused = await client.post("/v1/models/sleepy:predict", json={})
            assert (refused.status_code, refused.headers["retry-after"]) == (503, "1")
            model_cls.gate.set()
            await until(lambda: model_cls.finished == 1)
            ok = await client.post("/v1/models/sleepy:predict", json={})
            assert ok.status_code == 200

    run(test)


def test_full_queue_answers_429_with_retry_after() -> None:
    async def test() -> None:
        async with serving("gated") as (app, client):
            model = app.pipeline.model
            assert app.capacity == 4  # max_queue 2 + predict_concurrency 2
            calls = [asyncio.ensure_future(client.post("/v1/models/gated:predict", json=i)) for i in range(4)]
            await until(lambda: app.inflight == 4 and model.running == 2)
            refused = await client.post("/v1/models/gated:predict", json=99)
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) >= 1
            assert "retry" in refused.json()["error"]
            model.gate.set()
            answers = await asyncio.gather(*calls)
            assert [a.json()["got"] for a in answers] == [0, 1, 2, 3]

    run(test)


def test_predict_concurrency_limits_predict_only_and_model_code_runs_in_threads() -> None:
    async def test() -> None:
        async with serving("gated") as (app, client):
            model = app.pipeline.model
            calls = [asyncio.ensure_future(client.post("/v1/models/gated:predict", json=i)) for i in range(4)]
            await until(lambda: model.running == 2 and app.state.waiting == 2)
            metrics = (await client.get("/metrics")).text
            assert 'packager_queue_depth{model="gated"} 2.0' in metrics
            assert 'packager_requests_in_flight{model="gated"} 4.0' in metrics
            model.gate.set()
            assert all(r.status_code == 200 for r in await asyncio.gather(*calls))
            assert model.peak == 2
            assert all(name.startswith("packager") for name in model.threads)
            assert threading.current_thread().name not in model.threads  # never on the event loop

    run(test)


# -- schema, openapi, metrics, v2 ------------------------------------------------------------


def test_schema_matches_the_handle_and_openapi_describes_predict() -> None:
    import packager

    async def test() -> None:
        async with serving("typed") as (_, client):
            schema = (await client.get("/v1/models/typed/schema")).json()
            assert schema == packager.load(FIXTURES / "typed").schema()
            doc = (await client.get("/openapi.json")).json()
            assert doc["openapi"].startswith("3.1")
            predict = doc["paths"]["/v1/models/typed:predict"]["post"]
            request_schema = predict["requestBody"]["content"]["application/json"]["schema"]
            assert request_schema["required"] == ["text"]
            assert {"200", "422", "429", "503", "504"} <= set(predict["responses"])
            assert "Error" in doc["components"]["schemas"]

    run(test)


def test_metrics_count_requests_stages_and_load_time_per_app() -> None:
    async def test() -> None:
        async with serving("typed") as (_, client), serving("echo") as (_, other):
            await client.post("/v1/models/typed:predict", json={"text": "a"})
            await client.post("/v1/models/typed:predict", json={"text": "a"})
            await client.post("/v1/models/typed:predict", json={})
            await other.post("/v1/models/echo:predict", json={})
            response = await client.get("/metrics")
            assert response.headers["content-type"].startswith("text/plain")
            text = response.text
            assert 'packager_requests_total{model="typed",status="200"} 2.0' in text
            assert 'packager_requests_total{model="typed",status="422"} 1.0' in text
            assert 'model="echo"' not in text
            for stage in ("preprocess", "predict"):
                assert f'packager_stage_duration_seconds_count{{model="typed",stage="{stage}"}} 2.0' in text
            assert 'packager_request_duration_seconds_count{model="typed"} 3.0' in text
            assert 'packager_model_load_seconds{model="typed"}' in text
            assert 'packager_model_ready{model="typed"} 1.0' in text

    run(test)


def test_v2_infer_takes_and_returns_tensors() -> None:
    async def test() -> None:
        async with serving("echo") as (_, client):
            request = {
                "inputs": [
                    {"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]},
                    {"name": "words", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
                ]
            }
            response = await client.post("/v2/models/echo/infer", json=request)
            assert response.status_code == 200
            outputs = {o["name"]: o for o in response.json()["outputs"]}
            assert outputs["x"] == {
                "name": "x",
                "shape": [2, 2],
                "datatype": "FP32",
                "data": [1.0, 2.0, 3.0, 4.0],
            }
            assert outputs["words"]["data"] == ["a", "b"]
            assert response.json()["model_name"] == "echo"
            meta = (await client.get("/v2/models/echo")).json()
            assert meta["name"] == "echo"

    run(test)


@pytest.mark.parametrize(
    "request_body",
    [
        {},
        {"inputs": []},
        {"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1, 2]}]},
        {"inputs": [{"name": "x", "shape": [1], "datatype": "NOPE", "data": [1]}]},
        {"inputs": [{"shape": [1], "datatype": "FP32", "data": [1]}]},
        {"inputs": [{"name": "x", "shape": [1], "datatype": "INT8", "data": ["z"]}]},
    ],
)
def test_v2_malformed_requests_are_400(request_body: dict[str, Any]) -> None:
    async def test() -> None:
        async with serving("echo") as (_, client):
            response = await client.post("/v2/models/echo/infer", json=request_body)
            assert response.status_code == 400
            assert response.json()["error"]

    run(test)


def test_lifespan_messages_start_and_stop_the_app() -> None:
    async def test() -> None:
        app = create_app(Pipeline(read_package(FIXTURES / "echo")))
        messages = asyncio.Queue[dict[str, Any]]()
        for kind in ("lifespan.startup", "lifespan.shutdown"):
            messages.put_nowait({"type": kind})
        sent: list[str] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message["type"])

        await app({"type": "lifespan"}, messages.get, send)
        assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        assert app.state.loading is not None

    run(test)


def test_a_failing_endpoint_still_answers_json(monkeypatch: pytest.MonkeyPatch) -> None:
    async def test() -> None:
        async with serving("echo") as (app, client):

            def broken() -> bytes:
                raise RuntimeError("scrape failed")

            monkeypatch.setattr(app.metrics, "render", broken)
            response = await client.get("/metrics")
            assert response.status_code == 500
            assert response.json() == {"error": "internal server error; the server log has the details"}

    run(test)


def test_background_tasks_do_not_carry_the_current_request_id() -> None:
    from packager._server._logging import REQUEST_ID, background

    async def seen() -> object:
        return REQUEST_ID.get()

    async def test() -> None:
        REQUEST_ID.set("request-1")
        assert await asyncio.ensure_future(seen()) == "request-1"
        assert await background(seen()) is None

    run(test)
