"""Flows: a request's sync stages in worker threads, predict slots, hand-offs, stuck calls."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from test_server_app import until

from packager._errors import PredictError, SlotUnavailable
from packager._pipeline import Pipeline
from packager._runners import AsyncRunner
from packager._spec_load import read_package

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "serving"
Test = Callable[[Pipeline, AsyncRunner, Any], Awaitable[None]]


def with_hooks(test: Test, concurrency: int = 1) -> None:
    async def main() -> None:
        pipeline = Pipeline(read_package(FIXTURES / "hooks"))
        runner = AsyncRunner(concurrency=concurrency)
        await runner.run(pipeline.load_plan())
        try:
            await test(pipeline, runner, pipeline.model)
        finally:
            for gate in list(pipeline.model.gates.values()):
                gate.set()
            runner.close()

    asyncio.run(main())


def start(pipeline: Pipeline, runner: AsyncRunner, **inputs: Any) -> asyncio.Future[Any]:
    return asyncio.ensure_future(runner.run(pipeline.plan(inputs)))


def stages_of(model: Any, tag: str) -> list[tuple[str, str]]:
    return [(stage, thread) for stage, t, thread in model.log if t == tag]


def test_an_uncontended_request_runs_all_its_sync_stages_in_one_worker_thread() -> None:
    async def test(pipeline: Pipeline, runner: AsyncRunner, model: Any) -> None:
        assert await runner.run(pipeline.plan({"tag": "a"})) == {"tag": "a", "done": True}
        ran = stages_of(model, "a")
        assert [stage for stage, _ in ran] == ["preprocess", "predict", "postprocess"]
        assert len({thread for _, thread in ran}) == 1
        assert ran[0][1].startswith("packager")

    with_hooks(test)


@pytest.mark.parametrize("stage", ["preprocess", "postprocess"])
def test_preprocess_and_postprocess_never_hold_the_predict_slot(stage: str) -> None:
    async def test(pipeline: Pipeline, runner: AsyncRunner, model: Any) -> None:
        held = start(pipeline, runner, tag="a", hold=stage)
        await until(lambda: (stage, "a") in [(s, t) for s, t, _ in model.log])
        # with predict_concurrency 1, b's predict runs while a sits in its own hook
        assert await asyncio.wait_for(runner.run(pipeline.plan({"tag": "b"})), 30) == {
            "tag": "b",
            "done": True,
        }
        assert not held.done()
        model.release("a")
        assert (await held)["done"]

    with_hooks(test)


def test_waiting_predicts_run_one_at_a_time_in_arrival_order() -> None:
    async def test(pipeline: Pipeline, runner: AsyncRunner, model: Any) -> None:
        first = start(pipeline, runner, tag="a", hold="predict")
        await until(lambda: model.running == 1)
        rest = []
        for count, tag in enumerate("bcd", 1):
            rest.append(start(pipeline, runner, tag=tag))
            await until(lambda count=count: runner.waiting == count)
        model.release("a")
        answers = await asyncio.wait_for(asyncio.gather(first, *rest), 30)
        assert [a["tag"] for a in answers] == ["a", "b", "c", "d"]
        assert [t for s, t, _ in model.log if s == "predict"] == ["a", "b", "c", "d"]
        assert model.peak == 1
        assert runner.waiting == 0

    with_hooks(test)


def test_concurrency_two_runs_two_predicts_at_once() -> None:
    async def test(pipeline: Pipeline, runner: AsyncRunner, model: Any) -> None:
        calls = [start(pipeline, runner, tag=t, hold="predict") for t in "abc"]
        await until(lambda: model.running == 2 and runner.waiting == 1)
        for tag in "abc":
            model.release(tag)
        assert len(await asyncio.wait_for(asyncio.gather(*calls), 30)) == 3
        assert model.peak == 2

    with_hooks(test, concurrency=2)


def test_a_predict_its_request_gave_up_on_is_stuck_and_further_predicts_get_503_at_once() -> None:
    async def test(pipeline: Pipeline, runner: AsyncRunner, model: Any) -> None:
        hung = start(pipeline, runner, tag="a", hold="predict")
        await until(lambda: model.running == 1)
        waiting = start(pipeline, runner, tag="b")
        await until(lambda: runner.waiting == 1)
        hung.cancel()  # what the request deadline does
        with pytest.raises(asyncio.CancelledError):
            await hung
        assert runner.stuck == 1
        assert runner.slots == 1
        # the request already in line is refused as soon as every slot is stuck
        with pytest.raises(SlotUnavailable, match=r"outlived runtime\.request_timeout_s"):
            await asyncio.wait_for(waiting, 5)
        with pytest.raises(SlotUnavailable):
            await asyncio.wait_for(runner.run(pipeline.plan({"tag": "c"})), 5)
        assert [t for s, t, _ in model.log if s == "predict"] == ["a"]  # neither b nor c started
        model.release("a")
        await until(lambda: runner.stuck == 0)
        assert await asyncio.wait_for(runner.run(pipeline.plan({"tag": "d"})), 30) == {
            "tag": "d",
            "done": True,
        }
        # the abandoned request's postprocess never ran
        assert ("postprocess", "a") not in [(s, t) for s, t, _ in model.log]

    with_hooks(test)


def test_a_request_that_gives_up_while_in_line_never_started_and_gets_slot_unavailable() -> None:
    async def test(pipeline: Pipeline, runner: AsyncRunner, model: Any) -> None:
        busy = start(pipeline, runner, tag="a", hold="predict")
        await until(lambda: model.running == 1)
        queued = start(pipeline, runner, tag="b")
        await until(lambda: runner.waiting == 1)
        queued.cancel()
        with pytest.raises(SlotUnavailable, match="no predict slot came free"):
            await queued
        assert runner.waiting == 0
        assert runner.stuck == 0
        model.release("a")
        assert (await busy)["done"]
        assert [t for s, t, _ in model.log if s == "predict"] == ["a"]

    with_hooks(test)


@pytest.mark.parametrize("stage", ["preprocess", "predict", "postprocess"])
def test_system_exit_in_model_code_is_a_predict_error(stage: str) -> None:
    async def test(pipeline: Pipeline, runner: AsyncRunner, model: Any) -> None:
        with pytest.raises(PredictError, match=f"{stage} raised SystemExit"):
            await runner.run(pipeline.plan({"tag": "a", "exit": stage}))
        assert await runner.run(pipeline.plan({"tag": "b"})) == {"tag": "b", "done": True}

    with_hooks(test)


def test_system_exit_in_an_async_predict_is_a_predict_error_and_the_loop_goes_on(tmp_path: Path) -> None:
    (tmp_path / "package.yaml").write_text("spec_version: 1\nname: quits\n")
    (tmp_path / "model.py").write_text(
        "class Model:\n    async def predict(self, inputs):\n        raise SystemExit(inputs)\n"
    )

    async def main() -> None:
        pipeline = Pipeline(read_package(tmp_path))
        runner = AsyncRunner()
        await runner.run(pipeline.load_plan())
        with pytest.raises(PredictError, match="predict raised SystemExit"):
            await runner.run(pipeline.plan(2))
        assert not runner.semaphore.locked()
        runner.close()

    asyncio.run(main())
