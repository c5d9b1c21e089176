"""bench/catalogue.py's plumbing: the entries, the options, an HTTP client, starting an entry's server, and
interleaved runs of the two sides."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import ROOT, Row, median
from _procs import HOST, Server, free_port, packager_cmd, wait_quiet

LIBRARY = ROOT / "library"
ENTRIES = {  # bench name -> (package folder, the model name in its URLs)
    "llama": (LIBRARY / "llama-2-7b-chat", "llama-2-7b-chat"),
    "whisper": (LIBRARY / "whisper", "whisper"),
    "sd": (LIBRARY / "stable-diffusion", "stable-diffusion"),
    "clip": (LIBRARY / "clip", "clip"),
}


@dataclass
class Config:
    device: str
    repeats: int
    tokens: int  # LLaMA: new tokens per request
    steps: int  # SD: denoising steps per image
    calls: int  # CLIP: requests per timed run
    seconds: float  # CLIP c=32: seconds per wrk run


class Client:
    """HTTP to a server on loopback, a new connection per request (the server closes idle ones after 5 s)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def _send(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        import http.client

        conn = http.client.HTTPConnection(HOST, self.port, timeout=600)
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **headers})
        return conn.getresponse()

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._send(path, body, {})
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"POST {path} answered {response.status}: {data[:300]!r}")
        return dict(json.loads(data))

    def first_text(self, path: str, body: dict[str, Any], text: Callable[[Any], str]) -> tuple[float, str]:
        """Seconds until the first SSE `data:` event with text in it, and that text; reads the stream out."""
        started = time.perf_counter()
        response = self._send(path, body, {"Accept": "text/event-stream"})
        first, seen = 0.0, ""
        while line := response.readline():
            payload = line.removeprefix(b"data:").strip()
            if not first and line.startswith(b"data:") and payload != b"[DONE]":
                seen = text(json.loads(payload))
                first = time.perf_counter() - started if seen else 0.0
        if response.status != 200 or not first:
            raise RuntimeError(f"POST {path} answered {response.status} with no text in its stream")
        return first, seen


def serve(entry: str, folder: Path, cfg: Config, package: Path | None = None) -> Server:
    """The entry's server (python -m packager._server), weights from `folder`, started and ready."""
    path, name = ENTRIES[entry]
    if package is not None:
        path, name = package, package.name.replace("_", "-")
    env = {"PACKAGER_WEIGHTS_DIR": str(folder), "PACKAGER_DEVICE": cfg.device, "HF_HUB_OFFLINE": "1"}
    server = Server(f"{name}-server", name, [], free_port(), env=env)
    server.cmd = packager_cmd(path, server.port)
    server.start()
    try:
        server.wait_ready(timeout=300)
    except BaseException:
        server.stop()
        raise
    return server


def interleave(sides: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Each side `repeats` times, order flipped every repeat, after waiting for a quiet machine."""
    got: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for rep in range(repeats):
        for name in names if rep % 2 == 0 else names[::-1]:
            wait_quiet(limit=20)
            got[name].append(sides[name]())
    return got


def runs(values: list[float], digits: int = 2) -> str:
    return "/".join(f"{v:.{digits}f}" for v in values)


def rate_row(name: str, unit: str, got: dict[str, list[float]], note: str) -> Row:
    """Server against direct, higher is better; target: at most 5% overhead."""
    ours, base = median(got["server"]), median(got["direct"])
    note = f"{note}; runs {runs(got['server'])} vs {runs(got['direct'])}"
    return Row(name, unit, ours, base, "≥ 0.95x (≤ 5% overhead)", ours >= 0.95 * base, note)
