"""Dynamic batching: requests gathered into predict_batch calls, each caller answered on its own."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from test_server_app import App, Client, run, serving, until

from packager._errors import PredictError
from packager._server._batching import DynamicBatcher

URL = "/v1/models/batch:predict"


async def hold_first_batch(app: App, client: Client) -> tuple[Any, asyncio.Future[Any]]:
    """Start one request and keep its batch (of one) running inside predict_batch."""
    model = app.pipeline.model
    model.gate.clear()
    first = asyncio.ensure_future(client.post(URL, json={"x": 0}))
    await until(lambda: app.runner is not None and app.runner.semaphore.locked())
    return model, first


def test_waiting_requests_are_gathered_up_to_the_batch_size() -> None:
    async def test() -> None:
        async with serving("batch") as (app, client):
            model, first = await hold_first_batch(app, client)
            rest = [asyncio.ensure_future(client.post(URL, json={"x": i})) for i in range(1, 7)]
            await until(lambda: app.state.waiting == 6)
            model.gate.set()
            answers = await asyncio.gather(first, *rest)
            assert [a.json() for a in answers] == [{"y": 2 * i} for i in range(7)]
            assert model.sizes == [1, 4, 2]  # max_batch_size 4
            metrics = (await client.get("/metrics")).text
            assert 'packager_batch_size_count{model="batch"} 3.0' in metrics
            assert 'packager_batch_size_sum{model="batch"} 7.0' in metrics
            assert 'packager_stage_duration_seconds_count{model="batch",stage="predict_batch"} 3.0' in metrics

    run(test)


def test_a_failing_batch_fails_every_caller_in_it_and_only_them() -> None:
    async def test() -> None:
        async with serving("batch") as (app, client):
            model, first = await hold_first_batch(app, client)
            batch = [asyncio.ensure_future(client.post(URL, json={"x": 1, "fail": i == 2})) for i in range(4)]
            await until(lambda: app.state.waiting == 4)
            model.gate.set()
            assert (await first).json() == {"y": 0}
            answers = await asyncio.gather(*batch)
            assert [a.status_code for a in answers] == [500] * 4
            assert all("poisoned" in a.json()["error"] for a in answers)
            assert len({a.json()["request_id"] for a in answers}) == 4
            after = await client.post(URL, json={"x": 5})
            assert after.json() == {"y": 10}

    run(test)


def test_a_batch_returning_the_wrong_number_of_outputs_is_a_clear_500() -> None:
    async def test() -> None:
        async with serving("batch") as (app, client):
            model, first = await hold_first_batch(app, client)
            batch = [asyncio.ensure_future(client.post(URL, json={"x": i, "short": True})) for i in range(3)]
            await until(lambda: app.state.waiting == 3)
            model.gate.set()
            await first
            for answer in await asyncio.gather(*batch):
                assert answer.status_code == 500
                assert "returned 2 outputs for a batch of 3 inputs" in answer.json()["error"]

    run(test)


def test_input_errors_are_per_request_and_never_reach_the_batch() -> None:
    async def test() -> None:
        async with serving("batch") as (app, client):
            bad = await client.post(URL, content=b"{", headers={"content-type": "application/json"})
            assert bad.status_code == 400
            assert (await client.post(URL, json={"x": 3})).json() == {"y": 6}
            assert app.pipeline.model.sizes == [1]

    run(test)


class _Runner:
    """Just enough of AsyncRunner for the batcher: a semaphore and `timed`."""

    def __init__(self) -> None:
        self.semaphore = asyncio.Semaphore(1)
        self.batches: list[list[Any]] = []

    async def timed(self, call: Any) -> Any:
        return await call.fn(*call.args)


class _Pipeline:
    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def batch_call(self, values: list[Any]) -> Any:
        class Call:
            fn = self.fn
            args = (values,)

        return Call


def _batcher(fn: Any, **options: Any) -> DynamicBatcher:
    return DynamicBatcher(_Runner(), _Pipeline(fn), **{"max_size": 3, "max_wait_s": 0.05, **options})  # type: ignore[arg-type]


def test_max_wait_sends_a_partial_batch_and_cancelled_callers_are_dropped() -> None:
    seen: list[list[int]] = []

    async def double(values: list[int]) -> list[int]:
        seen.append(values)
        return [v * 2 for v in values]

    async def test() -> None:
        batcher = _batcher(double, max_wait_s=0.01)
        gone = batcher.submit(1)
        gone.cancel()
        assert await batcher.submit(2) == 4
        assert await asyncio.gather(batcher.submit(3), batcher.submit(4)) == [6, 8]
        batcher.close()
        assert 1 not in [v for values in seen for v in values]
        with pytest.raises(Exception, match="shutting down"):
            batcher.submit(5)

    run(test)


def test_a_non_list_result_and_closing_with_waiters() -> None:
    async def scalar(values: list[int]) -> int:
        return 1

    async def never(values: list[int]) -> list[int]:
        await asyncio.sleep(3600)
        return values

    async def test() -> None:
        with pytest.raises(PredictError, match="returned a int for a batch of 1"):
            await _batcher(scalar).submit(1)
        batcher = _batcher(never, max_size=1)
        running = batcher.submit(1)
        waiting = batcher.submit(2)
        await until(lambda: batcher.depth == 1)
        batcher.close()
        for future in (waiting, running):
            with pytest.raises(Exception, match="shutting down"):
                await future

    run(test)


def test_no_wait_when_no_other_request_is_in_flight() -> None:
    seen: list[list[int]] = []

    async def double(values: list[int]) -> list[int]:
        seen.append(values)
        return [v * 2 for v in values]

    async def test() -> None:
        inflight = [1]
        batcher = _batcher(double, max_wait_s=60, inflight=lambda: inflight[0])  # a wait would hang
        assert await asyncio.wait_for(batcher.submit(1), timeout=10) == 2  # alone: sent at once
        inflight[0] = 2  # a second request is on its way (in preprocess, say): wait for it
        first = batcher.submit(3)
        await asyncio.sleep(0.2)
        assert not first.done()
        assert await asyncio.wait_for(asyncio.gather(first, batcher.submit(4)), timeout=10) == [6, 8]
        assert seen == [[1], [3, 4]]  # the second came while the first waited: one batch
        batcher.close()

    run(test)
