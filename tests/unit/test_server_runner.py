"""AsyncRunner and its worker threads: slots, streams holding them, abandonment, context."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from pathlib import Path

import pytest
from test_server_app import run, until

import packager
from packager._errors import PredictError
from packager._pipeline import Pipeline
from packager._runners import AsyncRunner, ChunkStream
from packager._spec_load import read_package
from packager._threads import ThreadPool

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "serving"


async def loaded(name: str, concurrency: int = 1) -> tuple[Pipeline, AsyncRunner]:
    pipeline = Pipeline(read_package(FIXTURES / name))
    runner = AsyncRunner(concurrency=concurrency)
    await runner.run(pipeline.load_plan())
    return pipeline, runner


def test_an_open_sync_stream_keeps_its_predict_slot_until_closed() -> None:
    async def test() -> None:
        pipeline, runner = await loaded("stream")
        stream = await runner.run(pipeline.plan({"n": 5}))
        assert isinstance(stream, ChunkStream)
        assert await stream.__anext__() == "tok0 "
        second = asyncio.ensure_future(runner.run(pipeline.plan({"n": 1})))
        await until(lambda: runner.waiting == 1)
        assert not second.done()
        await stream.aclose()
        follow = await asyncio.wait_for(second, 30)
        assert [chunk async for chunk in follow] == ["tok0 "]
        assert type(pipeline.model).__name__ == "Model"
        runner.close()

    run(test)


def test_async_generator_predict_streams_from_both_drivers() -> None:
    handle = packager.load(FIXTURES / "async_stream")
    assert list(handle.predict({"n": 3})) == [{"i": 0}, {"i": 1}, {"i": 2}]

    async def test() -> None:
        pipeline, runner = await loaded("async_stream")
        stream = await runner.run(pipeline.plan({"n": 2}))
        assert [chunk async for chunk in stream] == [{"i": 0}, {"i": 1}]
        assert not runner.semaphore.locked()

    run(test)


def test_sync_predict_error_is_wrapped_and_frees_the_slot() -> None:
    async def test() -> None:
        pipeline, runner = await loaded("sleepy")
        with pytest.raises(PredictError, match="ValueError: model failed on purpose"):
            await runner.run(pipeline.plan({"fail": True}))
        assert await runner.run(pipeline.plan({})) == {"ok": True}

    run(test)


def test_thread_pool_skips_cancelled_jobs_and_keeps_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    ran: list[str] = []
    gate = threading.Event()

    def work(tag: str) -> str:
        gate.wait(30)
        ran.append(tag)
        return var.get()

    def stop() -> None:
        raise StopIteration

    async def test() -> None:
        pool = ThreadPool(1)
        var.set("request-7")
        first = pool.submit(work, ("first",))
        skipped = pool.submit(work, ("skipped",))
        skipped.future.cancel()
        gate.set()
        assert await first.future == "request-7"
        await until(lambda: skipped.finished)
        assert ran == ["first"]
        with pytest.raises(RuntimeError, match="StopIteration"):
            await pool.submit(stop, ()).future
        pool.close()

    run(test)


@pytest.mark.timeout(120)
def test_queued_jobs_get_threads_while_one_thread_is_blocked() -> None:
    """A job blocking a thread must not strand jobs queued behind it while the pool has room."""
    gate = threading.Event()

    async def test() -> None:
        pool = ThreadPool(4)
        warm = pool.submit(lambda: None, ())
        await warm.future
        blocked = pool.submit(gate.wait, (30,))
        quick = [pool.submit(lambda i=i: i, ()) for i in range(3)]
        assert [await job.future for job in quick] == [0, 1, 2]
        gate.set()
        assert await blocked.future is True
        pool.close()

    run(test)
