"""Helpers of the tests run inside the private network namespace (no ray import here)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ray"
PROXY = "http://127.0.0.1:8000"


def wait_for(url: str, *, seconds: float = 60.0) -> httpx.Response:
    """GET `url` until it answers 200 (bounded); the last response or error fails the test."""
    deadline = time.monotonic() + seconds
    last = "nothing"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == 200:
                return response
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.25)
    raise AssertionError(f"{url} did not answer 200 within {seconds:g}s: {last}")
