"""The baseline for bench/serve.py: what a competent person writes by hand with Starlette.

One route per KServe V1 path: the body is parsed with orjson, the sync model
function runs in Starlette's thread pool (`run_in_threadpool`, as a hand-written
app must do to keep the event loop free), and the result is dumped with orjson.
Readiness answers 200 at once. Run under uvicorn with uvloop, httptools and no
access log (see `_procs.starlette_cmd`).

BENCH_INLINE=1 calls the function on the event loop instead (a reference for
what the thread hop costs, not a fair baseline: it blocks the loop).
BENCH_WORK picks the model function: `echo` (return the body), `hooks` (the
three steps of bench/packages/echo_hooks in a row) or `numpy` (the same
matmul loop as bench/packages/numpy_work, BENCH_NUMPY_LOOPS times).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent / "packages" / "numpy_work"))


def echo(body: Any) -> Any:
    return body


def hooks(body: Any) -> Any:
    """Preprocess, predict and postprocess of bench/packages/echo_hooks, one after the other."""
    return postprocess(echo(preprocess(body)))


def preprocess(body: Any) -> Any:
    return body


def postprocess(body: Any) -> Any:
    return body


def numpy_work(body: Any) -> Any:
    from matmul_work import work

    return work(body, int(os.environ.get("BENCH_NUMPY_LOOPS", "1")))


WORK = {"echo": echo, "hooks": hooks, "numpy": numpy_work}[os.environ.get("BENCH_WORK", "echo")]


async def predict(request: Request) -> Response:
    body = orjson.loads(await request.body())
    result = await run_in_threadpool(WORK, body)
    return Response(orjson.dumps(result), media_type="application/json")


async def predict_inline(request: Request) -> Response:
    """Reference only (BENCH_INLINE=1): the model called on the event loop, no thread hop."""
    body = orjson.loads(await request.body())
    return Response(orjson.dumps(WORK(body)), media_type="application/json")


async def ready(request: Request) -> Response:
    return Response(
        orjson.dumps({"name": request.path_params["name"], "ready": True}), media_type="application/json"
    )


app = Starlette(
    routes=[
        Route(
            "/v1/models/{name}:predict",
            predict_inline if os.environ.get("BENCH_INLINE") == "1" else predict,
            methods=["POST"],
        ),
        Route("/v1/models/{name}", ready, methods=["GET"]),
    ]
)
