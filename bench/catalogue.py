"""Catalogue benchmark: the catalogue entries served by packager against the same libraries called directly.

    .venv/bin/python bench/catalogue.py [--write] [--only llama,whisper,sd,clip,load] [--device cpu|cuda]

Per entry, in one run: throughput through `pkg serve` (a client in this process, the server
another process on 127.0.0.1) against the same model code called in this process without
packager; time to first token through SSE (OpenAI and V1 routes) against the first token of
a prefill in-process; CLIP at c=32 with and without dynamic batching; `packager.load` time
against reading the weight bytes. Sides are interleaved, medians shown. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from _catalogue_run import ENTRIES, Client, Config, interleave, rate_row, runs, serve
from _catalogue_vision import clip_rows, sd_rows
from _catalogue_work import (
    CHAT,
    QUESTION,
    DirectLlama,
    DirectWhisper,
    b64,
    speech_wav,
    timed,
    weights_dir,
)
from _common import ROOT, Row, machine, median, table, write_section
from _procs import wait_quiet

# -- LLaMA ---------------------------------------------------------------------------------------


def llama_rows(cfg: Config) -> list[Row]:
    folder = weights_dir("llama")
    direct = DirectLlama(folder / "llama", cfg.device)
    server = serve("llama", folder, cfg)
    try:
        client = Client(server.port)
        return _llama_throughput(client, direct, cfg) + _llama_ttft(client, direct, cfg)
    finally:
        server.stop()


def _llama_throughput(client: Client, direct: DirectLlama, cfg: Config) -> list[Row]:
    path = "/v1/models/llama-2-7b-chat:predict"
    body = {"messages": CHAT, "temperature": 0, "max_tokens": cfg.tokens}
    texts: dict[str, str] = {}

    def served() -> float:
        seconds, out = timed(client.post, path, body)
        texts["server"] = out["text"]
        return int(out["usage"]["completion_tokens"]) / seconds

    def alone() -> float:
        seconds, (text, count) = timed(direct.generate, CHAT, cfg.tokens)
        texts["direct"] = text
        return count / seconds

    served(), alone()  # warm-up
    got = interleave({"server": served, "direct": alone}, cfg.repeats)
    same = "same text" if texts["server"].strip() == texts["direct"].strip() else "**texts differ**"
    note = (
        f"{cfg.tokens} new tokens per request, greedy, V1 predict vs transformers `generate` "
        f"(min_new_tokens = max_new_tokens); {same}"
    )
    return [rate_row("LLaMA (SmolLM2-135M): tokens/s, served vs direct", "tok/s", got, note)]


def _llama_ttft(client: Client, direct: DirectLlama, cfg: Config) -> list[Row]:
    base = {"messages": QUESTION, "temperature": 0, "max_tokens": 4, "stream": True}
    openai = {**base, "model": "llama-2-7b-chat"}
    firsts: dict[str, str] = {}

    def openai_first() -> float:
        seconds, firsts["openai"] = client.first_text(
            "/v1/chat/completions", openai, lambda e: e["choices"][0]["delta"].get("content") or ""
        )
        return seconds * 1e3

    def v1_first() -> float:
        path = "/v1/models/llama-2-7b-chat:predict"
        seconds, firsts["v1"] = client.first_text(path, base, lambda e: e.get("text") or "")
        return seconds * 1e3

    def alone() -> float:
        seconds, firsts["direct"] = timed(direct.first_token, QUESTION)
        return seconds * 1e3

    sides = {"openai": openai_first, "v1": v1_first, "direct": alone}
    for side in sides.values():
        side()  # warm-up
    got = interleave(sides, cfg.repeats * 2)
    rows = []
    for key, what in (("openai", "OpenAI `/v1/chat/completions`"), ("v1", "V1 `:predict`")):
        ours, alone_ms = median(got[key]), median(got["direct"])
        rows.append(
            Row(
                f"LLaMA: time to first token, SSE via {what} vs direct",
                "ms",
                ours,
                alone_ms,
                "≤ +10 ms",
                ours - alone_ms <= 10,
                f"**+{ours - alone_ms:.1f} ms**; first text {firsts[key]!r} vs {firsts['direct']!r}; "
                f"direct = chat template + one prefill forward + argmax + decode; runs {runs(got[key], 1)} "
                f"vs {runs(got['direct'], 1)}",
            )
        )
    return rows


# -- Whisper, Stable Diffusion, CLIP -------------------------------------------------------------


def whisper_rows(cfg: Config) -> list[Row]:
    folder = weights_dir("whisper")
    wav, samples = speech_wav()
    duration = len(samples) / 16_000
    direct = DirectWhisper(folder, cfg.device)
    server = serve("whisper", folder, cfg)
    texts: dict[str, str] = {}
    try:
        client = Client(server.port)
        body = {"audio": b64(wav), "language": "en"}

        def served() -> float:
            seconds, out = timed(client.post, "/v1/models/whisper:predict", body)
            texts["server"] = out["text"]
            return seconds / duration

        def alone() -> float:
            seconds, texts["direct"] = timed(direct.transcribe, samples)
            return seconds / duration

        served(), alone()
        got = interleave({"server": served, "direct": alone}, cfg.repeats)
    finally:
        server.stop()
    ours, base = median(got["server"]), median(got["direct"])
    same = "same text" if texts["server"] == texts["direct"] else "**texts differ**"
    note = (
        f"real-time factor (compute s per audio s, lower is better); tiny.en, {duration:.1f} s of espeak-ng "
        f"speech, 16 kHz WAV (base64) vs the float samples to `transcribe`; {same}; "
        f"runs {runs(got['server'], 3)} vs {runs(got['direct'], 3)}"
    )
    return [Row("Whisper (tiny.en): real-time factor, served vs direct", "RTF", ours, base,
                "≤ 1.05x (≤ 5% overhead)", ours <= 1.05 * base, note)]  # fmt: skip


# -- load time, main ------------------------------------------------------------------------------


def load_rows(cfg: Config, entries: list[str]) -> list[Row]:
    rows = []
    for entry in entries:
        wait_quiet(limit=20)
        cmd = [sys.executable, str(Path(__file__).parent / "_catalogue_load.py"), entry, cfg.device, "3"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"load of {entry} failed:\n{done.stderr[-2000:]}")
        got = json.loads(done.stdout.strip().splitlines()[-1])
        load, read = median(got["loads"]), median(got["reads"])
        note = (
            f"{got['bytes'] / 1e6:.1f} MB in {got['files']} files, page cache warm for both; imports done and "
            f"one load before timing (first load {got['first']:.2f} s); median of 3: {runs(got['loads'])} "
            f"vs {runs(got['reads'], 3)}"
        )
        rows.append(Row(f"load {ENTRIES[entry][1]}: packager.load vs reading the weight bytes", "s", load,
                        read, "≤ 1.2x", load <= 1.2 * read, note))  # fmt: skip
    return rows


SCENARIOS: dict[str, Callable[[Config], list[Row]]] = {
    "llama": llama_rows,
    "whisper": whisper_rows,
    "sd": sd_rows,
    "clip": clip_rows,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = [*SCENARIOS, "load"]
    parser.add_argument("--only", default=",".join(names), help="comma-separated: " + ", ".join(names))
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (PACKAGER_DEVICE of the server)")
    parser.add_argument("--repeats", type=int, default=3, help="measured runs per side (TTFT: twice as many)")
    parser.add_argument("--tokens", type=int, default=48, help="LLaMA: new tokens per request")
    parser.add_argument("--steps", type=int, default=10, help="Stable Diffusion: denoising steps")
    parser.add_argument("--calls", type=int, default=20, help="CLIP: requests per timed run")
    parser.add_argument("--seconds", type=float, default=4.0, help="CLIP c=32: seconds per wrk run")
    parser.add_argument("--write", action="store_true", help="write the table into bench/README.md")
    args = parser.parse_args()
    cfg = Config(args.device, args.repeats, args.tokens, args.steps, args.calls, args.seconds)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        parser.error(f"unknown part {unknown[0]!r}; choose from {', '.join(names)}")
    rows: list[Row] = []
    started = time.monotonic()
    for name in chosen:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        if name == "load":
            rows.extend(load_rows(cfg, [n for n in SCENARIOS if n in chosen] or list(SCENARIOS)))
        else:
            rows.extend(SCENARIOS[name](cfg))
    shape = f"device {cfg.device}; {cfg.repeats} runs per side, interleaved, medians; {time.monotonic() - started:.0f} s in all"
    body = f"{table(rows)}\n\n_{machine()}; {shape}._"
    print(body)
    if args.write:
        write_section("catalogue", body)


if __name__ == "__main__":
    main()
