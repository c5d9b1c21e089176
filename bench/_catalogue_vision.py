"""bench/catalogue.py's Stable Diffusion and CLIP rows (images in, images or embeddings out)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _catalogue_run import Client, Config, interleave, rate_row, runs, serve
from _catalogue_work import (
    SD_PROMPT,
    DirectClip,
    DirectSD,
    b64,
    pngs,
    timed,
    weights_dir,
)
from _common import PACKAGES, Row, median
from _procs import Server, post
from _wrk import ensure_wrk, run_wrk


def sd_rows(cfg: Config) -> list[Row]:
    import numpy as np
    from PIL import Image

    folder = weights_dir("sd")
    direct = DirectSD(folder, cfg.device)
    server = serve("sd", folder, cfg)
    images: dict[str, Any] = {}
    try:
        client = Client(server.port)
        body = {"prompt": SD_PROMPT, "seed": 1, "steps": cfg.steps}

        def served() -> float:
            seconds, out = timed(client.post, "/v1/models/stable-diffusion:predict", body)
            images["server"] = Image.open(io.BytesIO(__import__("base64").b64decode(out["images"][0])))
            return 1 / seconds

        def alone() -> float:
            seconds, out = timed(direct.generate, cfg.steps, 1)
            images["direct"] = out[0]
            return 1 / seconds

        served(), alone()
        got = interleave({"server": served, "direct": alone}, cfg.repeats)
    finally:
        server.stop()
    diff = np.abs(np.asarray(images["server"], np.int16) - np.asarray(images["direct"], np.int16)).max()
    size = "x".join(map(str, images["direct"].size))
    note = (
        f"**random-init tiny pipeline: the absolute number means nothing, only the ratio does**; "
        f"{cfg.steps} steps DPM-Solver++, {size}, one image per request; the server also encodes the PNG; "
        f"max pixel difference {diff}"
    )
    return [rate_row("Stable Diffusion (tiny random): images/s, served vs direct", "img/s", got, note)]


def clip_rows(cfg: Config) -> list[Row]:
    folder = weights_dir("clip")
    images = pngs(8)
    direct = DirectClip(folder / "clip-vit-base-patch32", cfg.device)
    server = serve("clip", folder, cfg)
    try:
        client = Client(server.port)
        body = {"images": [b64(image) for image in images]}

        def served() -> float:
            seconds, _ = timed(
                lambda: [client.post("/v1/models/clip:predict", body) for _ in range(cfg.calls)]
            )
            return cfg.calls * len(images) / seconds

        def alone() -> float:
            seconds, _ = timed(lambda: [direct.embed(images) for _ in range(cfg.calls)])
            return cfg.calls * len(images) / seconds

        served(), alone()
        got = interleave({"server": served, "direct": alone}, cfg.repeats)
        note = (
            f"tiny random CLIP (32 px input, 2 layers): the model's work per request is tiny, so this "
            f"shows the per-request cost; {len(images)} 64x64 PNGs per request, {cfg.calls} requests per run, c=1"
        )
        rows = [rate_row("CLIP (tiny random): embeddings/s, served vs direct", "emb/s", got, note)]
        return [*rows, _clip_batching(server, folder, images, cfg)]
    finally:
        server.stop()


def _clip_batching(batched: Server, folder: Path, images: list[bytes], cfg: Config) -> Row:
    ensure_wrk()
    single = serve("clip", folder, cfg, package=PACKAGES / "clip_nobatch")
    bodies = [json.dumps({"image": b64(image)}).encode() for image in images]
    try:
        for server in (batched, single):
            status, reply = post(server.predict_url, bodies[0])
            if status != 200:
                raise RuntimeError(f"{server.label}: {status} {reply[:200]!r}")
            run_wrk(server.predict_url, bodies, 32, 2)

        def side(server: Server) -> Callable[[], float]:
            def run() -> float:
                result = run_wrk(server.predict_url, bodies, 32, cfg.seconds)
                if result.errors:
                    raise RuntimeError(f"{server.label}: {result.errors} errors")
                return result.rps

            return run

        got = interleave({"batched": side(batched), "single": side(single)}, cfg.repeats)
    finally:
        single.stop()
    ours, base = median(got["batched"]), median(got["single"])
    note = (
        f"one 64x64 PNG per request, wrk -t1 -c32 {cfg.seconds:g} s; max_batch_size 32, max_wait_ms 10 vs "
        f"bench/packages/clip_nobatch (predict_batch = None); runs {runs(got['batched'], 0)} vs {runs(got['single'], 0)}"
    )
    return Row("CLIP c=32: batched vs unbatched", "req/s", ours, base, "≥ 3x", ours >= 3 * base, note)
