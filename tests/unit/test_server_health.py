"""Readiness when things go wrong: every predict slot stuck, is_healthy() hanging or not a bool."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from test_server_app import run, serving, until

READY_PATHS = ("/v1/models/{name}", "/v2/health/ready", "/v2/models/{name}/ready")


def gauge(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} in /metrics")


async def readiness(client: httpx.AsyncClient, name: str) -> list[httpx.Response]:
    return [await client.get(path.format(name=name)) for path in READY_PATHS]


def test_stuck_predict_turns_readiness_503_and_later_requests_503_at_once() -> None:
    async def test() -> None:
        async with serving("hung") as (app, client):
            model_cls = type(app.pipeline.model)
            model_cls.gate.clear()
            stopped: list[str] = []
            app.state.on_stuck = stopped.append
            late = await client.post("/v1/models/hung:predict", json={"block": 60})
            assert late.status_code == 504
            # The hung call holds the only slot: the next request is refused at once, not after
            # another full request_timeout_s, and told to retry.
            refused = await client.post("/v1/models/hung:predict", json={})
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            for response in await readiness(client, "hung"):
                assert response.status_code == 503
                assert response.headers["retry-after"] == "1"
                body = response.json()
                assert body["ready"] is False
                assert "every predict slot (1)" in body["error"]
                assert "runtime.stuck_exit_s (2s)" in body["error"]
            metrics = (await client.get("/metrics")).text
            assert gauge(metrics, "packager_predict_slots_stuck") == 1.0
            assert gauge(metrics, "packager_predict_slots") == 1.0
            assert gauge(metrics, "packager_model_ready") == 0.0
            # After runtime.stuck_exit_s of it, the watchdog asks the server to stop.
            await until(lambda: bool(stopped))
            assert "runtime.stuck_exit_s" in stopped[0]
            # If the call finally returns, the server serves again.
            model_cls.gate.set()
            await until(lambda: model_cls.returned == 1 and app.state.runner.stuck == 0)
            assert all(r.status_code == 200 for r in await readiness(client, "hung"))
            assert (await client.post("/v1/models/hung:predict", json={})).status_code == 200
            metrics = (await client.get("/metrics")).text
            assert gauge(metrics, "packager_predict_slots_stuck") == 0.0
            assert gauge(metrics, "packager_model_ready") == 1.0

    run(test)


def test_a_request_whose_deadline_fires_while_waiting_for_a_slot_gets_503() -> None:
    async def test() -> None:
        async with serving("hung") as (app, client):
            model_cls = type(app.pipeline.model)
            model_cls.gate.clear()
            try:
                first = asyncio.ensure_future(client.post("/v1/models/hung:predict", json={"block": 60}))
                await until(lambda: app.inflight == 1)
                waiting = await client.post("/v1/models/hung:predict", json={})
                assert waiting.status_code == 503  # its work never started: not a 504
                assert waiting.headers["retry-after"] == "1"
                assert "slot" in waiting.json()["error"]
                assert (await first).status_code == 504
            finally:
                model_cls.gate.set()
            await until(lambda: app.state.runner.stuck == 0)

    run(test)


def test_a_hanging_is_healthy_is_bounded_by_health_timeout_s() -> None:
    async def test() -> None:
        async with serving("health") as (app, client):
            model_cls = type(app.pipeline.model)
            model_cls.gate.clear()
            model_cls.calls = 0
            model_cls.healthy = "hang"
            try:
                first = await asyncio.wait_for(client.get("/v1/models/health"), 10)
                assert first.status_code == 503
                assert "runtime.health_timeout_s (0.5s)" in first.json()["error"]
                # Asked again while the first call still hangs: answered at once, no second call.
                loop = asyncio.get_running_loop()
                started = loop.time()
                again = await client.get("/v2/health/ready")
                assert again.status_code == 503
                assert loop.time() - started < 0.5
                assert model_cls.calls == 1
                metrics = (await client.get("/metrics")).text
                assert gauge(metrics, "packager_model_ready") == 0.0
            finally:
                model_cls.gate.set()
            await until(lambda: app.state._health is not None and app.state._health.done())
            assert (await client.get("/v1/models/health")).status_code == 200
            assert model_cls.calls == 2

    run(test)


@pytest.mark.parametrize(
    ("value", "shown"), [("yes", "'yes' (str)"), (None, "None (NoneType)"), (1, "1 (int)")]
)
def test_is_healthy_returning_a_non_bool_is_a_contract_error(
    value: object, shown: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def test() -> None:
        async with serving("health") as (app, client):
            type(app.pipeline.model).healthy = value
            with caplog.at_level(logging.WARNING, logger="packager.server"):
                for response in await readiness(client, "health"):
                    assert response.status_code == 503
                    error = response.json()["error"]
                    assert error == f"is_healthy() must return True or False; it returned {shown}"
            logged = [r.getMessage() for r in caplog.records if "must return True or False" in r.getMessage()]
            assert len(logged) == 1  # logged when it starts, not on every probe
            type(app.pipeline.model).healthy = True
            assert (await client.get("/v1/models/health")).status_code == 200

    run(test)
