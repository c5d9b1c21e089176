"""`pkg serve PATH --reload`: a real server on loopback while the test edits a copy of a fixture."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import FIXTURES, ROOT, ServerProcess

import packager
from packager._pipeline import Pipeline
from packager._server._app import App
from packager._server._reload import ReloadingApp
from packager._server._reload_watch import package_filter
from packager._spec_load import read_package

NAME = "reloadable"
SWAP_WITHIN_S = 15.0  # a bound for "it switches", not a speed check (a reload takes 0.1-0.3 s here)


class ReloadServer(ServerProcess):
    """`pkg serve PATH --port 0 --reload` (the harness's ServerProcess runs the container entrypoint)."""

    def __init__(self, package: Path, log: Path) -> None:
        self.log = log
        self._log_file = log.open("wb")
        command = [sys.executable, "-m", "packager", "serve", str(package), "--port", "0", "--reload"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=self._log_file, stderr=subprocess.STDOUT, env=env
        )
        self.port = 0

    def predict(self, **inputs: Any) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/v1/models/{NAME}:predict", json=inputs, timeout=30)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def events(self, event: str) -> list[dict[str, Any]]:
        records = [json.loads(line) for line in self.output().splitlines() if line.startswith("{")]
        return [record for record in records if record.get("event") == event]

    def wait_event(self, event: str, count: int) -> dict[str, Any]:
        deadline = time.monotonic() + SWAP_WITHIN_S
        while time.monotonic() < deadline:
            found = self.events(event)
            if len(found) >= count:
                return found[count - 1]
            time.sleep(0.05)
        raise AssertionError(f"no {event} event #{count}:\n{self.output()}")

    def wait_answer(self, key: str, value: Any) -> dict[str, Any]:
        deadline = time.monotonic() + SWAP_WITHIN_S
        while time.monotonic() < deadline:
            response = httpx.post(f"{self.url}/v1/models/{NAME}:predict", json={}, timeout=30)
            if response.status_code == 200 and response.json()[key] == value:
                answer: dict[str, Any] = response.json()
                return answer
            time.sleep(0.05)
        raise AssertionError(f"{key} never became {value!r}:\n{self.output()}")

    def reloads(self) -> dict[str, float]:
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        found = re.findall(r'packager_reloads_total\{model="reloadable",result="(\w+)"\} (\S+)', text)
        return {result: float(count) for result, count in found}


@pytest.fixture
def package(tmp_path: Path) -> Path:
    target = tmp_path / NAME
    shutil.copytree(FIXTURES / NAME, target)
    return target


@pytest.fixture
def server(package: Path, tmp_path: Path) -> Iterator[ReloadServer]:
    process = ReloadServer(package, tmp_path / "server.log")
    try:
        process.wait_listening().wait_ready(NAME)
        yield process
    finally:
        process.stop()


def edit(path: Path, old: str, new: str) -> int:
    """Replace `old` with `new` in `path`; return the line number where it was."""
    text = path.read_text()
    assert old in text, (old, text)
    path.write_text(text.replace(old, new))
    return text[: text.index(old)].count("\n") + 1


def test_an_edit_is_swapped_in_while_requests_run(server: ReloadServer, package: Path) -> None:
    before = server.predict()
    answers: list[tuple[int, Any]] = []
    ready: list[int] = []
    slow: dict[str, Any] = {}
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not stop.is_set():
                response = client.post(f"/v1/models/{NAME}:predict", json={})
                answers.append((response.status_code, response.json().get("version")))
                ready.append(client.get(f"/v1/models/{NAME}").status_code)

    threads = [
        threading.Thread(target=hammer),
        threading.Thread(target=lambda: slow.update(server.predict(sleep=2))),
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # the slow request is in the old model now
    edited = time.monotonic()
    edit(package / "model.py", "VERSION = 1", "VERSION = 2")
    after = server.wait_answer("version", 2)
    swapped_in = time.monotonic() - edited
    time.sleep(0.3)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)

    assert swapped_in < SWAP_WITHIN_S
    assert {status for status, _ in answers} == {200}, answers
    assert set(ready) == {200}  # the old model answered readiness during the reload
    versions = [version for _, version in answers]
    assert versions == sorted(versions)  # never the old code again once the new one answered
    assert (versions[0], versions[-1]) == (1, 2)
    assert slow["version"] == 1  # started before the edit: finished on the old code
    assert (after["made_ns"], after["loads"]) == (before["made_ns"], 2)  # reload_cache() kept the state
    assert server.reloads() == {"ok": 1.0, "error": 0.0}


def test_a_broken_edit_keeps_serving_the_last_good_code(server: ReloadServer, package: Path) -> None:
    line = edit(package / "model.py", "VERSION = 1", "VERSION = (")
    failed = server.wait_event("reload_failed", 1)
    assert (failed["file"], failed["line"]) == ("model.py", line)
    assert f"model.py line {line}: syntax error" in failed["msg"]
    assert server.predict()["version"] == 1

    edit(package / "model.py", "VERSION = (", "VERSION = 2")
    line = edit(package / "model.py", "time.sleep(0.3)", 'raise RuntimeError("no weights")')
    failed = server.wait_event("reload_failed", 2)
    assert (failed["file"], failed["line"]) == ("model.py", line)
    assert "load raised RuntimeError: no weights" in failed["msg"]
    assert server.predict()["version"] == 1

    edit(package / "model.py", 'raise RuntimeError("no weights")', "time.sleep(0.3)")
    assert server.wait_answer("version", 2)["loads"] == 2
    assert server.reloads() == {"ok": 1.0, "error": 2.0}


def test_package_yaml_and_helper_edits_reload(server: ReloadServer, package: Path) -> None:
    edit(package / "helper.py", '"alpha"', '"beta"')
    assert server.wait_answer("word", "beta")["greeting"] == "hello"

    edit(package / "package.yaml", "GREETING: hello", "GREETING: hi")
    assert server.wait_answer("greeting", "hi")["word"] == "beta"

    edit(package / "package.yaml", "predict_concurrency: 4", "predict_concurrency: many")
    failed = server.wait_event("reload_failed", 1)
    assert failed["file"] == "package.yaml"
    assert "predict_concurrency" in failed["msg"]
    assert server.predict()["greeting"] == "hi"
    assert server.reloads() == {"ok": 2.0, "error": 1.0}


def test_a_failed_first_load_waits_for_a_fix(package: Path, tmp_path: Path) -> None:
    edit(package / "model.py", "time.sleep(0.3)", 'raise RuntimeError("no weights")')
    server = ReloadServer(package, tmp_path / "server.log")
    try:
        server.wait_listening()
        deadline = time.monotonic() + 30
        while "failed to load" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        ready = httpx.get(f"{server.url}/v1/models/{NAME}", timeout=10)
        assert ready.status_code == 503
        assert "no weights" in ready.json()["error"]
        edit(package / "model.py", 'raise RuntimeError("no weights")', "time.sleep(0.3)")
        assert server.wait_answer("version", 1)["loads"] == 1
        assert server.process.poll() is None
    finally:
        server.stop()


def test_only_code_and_the_spec_are_watched(package: Path) -> None:
    accept = package_filter()
    for name in ("model.py", "helper.py", "sub/util.py", "package.yaml"):
        assert accept(None, str(package / name)), name
    for name in (
        "notes.txt",
        ".model.py.swp",
        "model.py~",
        ".#model.py",
        "__pycache__/model.cpython-311.pyc",
    ):
        assert not accept(None, str(package / name)), name
    assert not accept(None, str(package / ".git" / "x.py"))


def test_reload_cache_outside_reload_is_a_fresh_dict_each_load() -> None:
    first = packager.load(FIXTURES / NAME).predict({})
    second = packager.load(FIXTURES / NAME).predict({})
    assert first["loads"] == second["loads"] == 1
    assert first["made_ns"] != second["made_ns"]
    with pytest.raises(packager.PackagerError, match="from __init__ or load"):
        packager.reload_cache()


def test_the_old_model_is_closed_once_its_last_request_is_answered(package: Path) -> None:
    async def scenario() -> None:
        old = App(Pipeline(read_package(package)), autoload=False)
        app = ReloadingApp(package, old)
        await old.startup()
        old.start_loading()
        await old.wait_loaded()
        prefix = old.pipeline.namespace.prefix
        assert prefix in sys.modules
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            url = f"/v1/models/{NAME}:predict"
            slow = asyncio.ensure_future(client.post(url, json={"sleep": 0.6}))
            await asyncio.sleep(0.1)
            edit(package / "model.py", "VERSION = 1", "VERSION = 2")
            await app.reload(["model.py"])
            assert (await client.post(url, json={})).json()["version"] == 2
            assert old.pipeline.ready  # still answering the slow request
            assert app.retiring == {old}
            assert (await slow).json()["version"] == 1
            for _ in range(40):
                if not app.retiring:
                    break
                await asyncio.sleep(0.05)
        assert not app.retiring
        assert not old.pipeline.ready
        assert not [name for name in sys.modules if name.partition(".")[0] == prefix]  # its modules gone
        await app.shutdown()

    asyncio.run(scenario())
