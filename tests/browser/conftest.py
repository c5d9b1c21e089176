"""Fixtures for the playground tests: `pkg serve` subprocesses on loopback and headless Chromium.

Chromium is Debian's (/usr/bin/chromium, `apt-get install chromium`), driven by the PyPI
`playwright` package; `playwright install` is never run. Without either, the browser tests fail
under CI (CI=true) and skip elsewhere.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
LISTENING = re.compile(r"serving \S+ on http://127\.0\.0\.1:(\d+)")


class Server:
    """`pkg serve PACKAGE --port 0`; its log goes to a file so nothing blocks on a full pipe."""

    def __init__(self, package: str, log: Path, env: dict[str, str]) -> None:
        self.log = log
        self._log_file = log.open("wb")
        pkg = Path(sys.executable).with_name("pkg")
        command = [str(pkg), "serve", str(FIXTURES / package), "--port", "0"]
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=self._log_file, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )
        self.url = ""

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, name: str) -> Server:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = LISTENING.search(self.output())
            if found and not self.url:
                self.url = f"http://127.0.0.1:{found.group(1)}"
            if self.url and _ready(f"{self.url}/v1/models/{name}"):
                return self
            assert self.process.poll() is None, self.output()
            time.sleep(0.05)
        raise AssertionError(f"server never became ready:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self._log_file.close()


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=10).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def _serve(package: str, name: str, **env: str) -> Server:
        server = Server(package, tmp_path / f"{Path(package).name}-{len(started)}.log", env)
        started.append(server)
        return server.wait_ready(name)

    yield _serve
    for server in started:
        server.stop()


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return "no /usr/bin/chromium: apt-get install -y chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "no playwright: scripts/venv installs it (the test extra)"
    return None


@pytest.fixture(scope="module")  # not session: Playwright's loop must be gone before asyncio.run tests
def browser() -> Iterator[Any]:
    problem = _missing()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)  # CI must run the real browser tests
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    """A fresh page (own session storage); a screenshot lands in tmp_path when the test ends."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
        assert not errors, errors  # an exception in the page's script fails the test
    finally:
        page.screenshot(path=str(tmp_path / "last.png"), full_page=True)
        context.close()
