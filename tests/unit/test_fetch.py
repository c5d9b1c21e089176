"""Fetching weights (packager/_fetch): https:// from a TLS server on 127.0.0.1, the cache, SDK sources."""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import json
import logging
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tls_server import https_server, self_signed

import packager
from packager._cli import cli
from packager._errors import ModelLoadError
from packager._fetch import fetch_weights
from packager._pipeline import Pipeline
from packager._runners import AsyncRunner
from packager._server._metrics import Metrics
from packager._spec_load import read_package

BODY = bytes(range(256)) * 4096  # 1 MiB
DIGEST = hashlib.sha256(BODY).hexdigest()
WRONG = "0" * 64
PLAIN_MODEL = "class Model:\n    def predict(self, inputs):\n        return inputs\n"


class State:
    def __init__(self) -> None:
        self.files = {"/model.bin": BODY}
        self.ranges = True
        self.cut: int | None = None  # bytes sent before the next GET is dropped
        self.delay = 0.0
        self.requests: list[tuple[str, str | None]] = []


class Handler(http.server.BaseHTTPRequestHandler):
    server: Any

    def do_GET(self) -> None:
        state: State = self.server.state
        asked = self.headers.get("Range")
        state.requests.append((self.path, asked))
        body = state.files.get(self.path.split("?", 1)[0])
        if body is None:
            self.send_error(404)
            return
        start = int(asked.split("=", 1)[1].rstrip("-")) if asked and state.ranges else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        time.sleep(state.delay)
        cut, state.cut = state.cut, None
        self.wfile.write(body[start:] if cut is None else body[start : start + cut])

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def server(cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, State]]:
    """An https server on 127.0.0.1 (its self-signed CA given by $PACKAGER_CA_BUNDLE)."""
    monkeypatch.setenv("PACKAGER_CA_BUNDLE", str(cert[1]))
    with https_server(Handler, *cert) as (url, httpd):
        httpd.state = State()  # type: ignore[attr-defined]
        yield url, httpd.state  # type: ignore[attr-defined]


def make_package(
    root: Path, url: str, sha: str | None = DIGEST, fetch: str = "start", extra: str = ""
) -> Path:
    digest = f"\n    sha256: {{model.bin: '{sha}'}}" if sha else ""
    (root / "package.yaml").write_text(
        f"spec_version: 1\nname: fetcher\n{extra}weights:\n  - source: {url}/model.bin\n    dir: w\n"
        f"    fetch: {fetch}{digest}\n"
    )
    (root / "model.py").write_text(
        "class Model:\n"
        "    def __init__(self, weights):\n"
        "        self.path = weights['w'] / 'model.bin'\n"
        "        self.size = self.path.stat().st_size\n"
        "    def predict(self, inputs):\n"
        "        return {'path': str(self.path), 'size': self.size}\n"
    )
    return root


def fetch(pkg: Path, cache: Path) -> dict[str, Path]:
    return fetch_weights(read_package(pkg).spec, cache, {})


def test_a_verified_download_lands_and_is_marked_complete(server: tuple[str, State], tmp_path: Path) -> None:
    url, state = server
    got = fetch(make_package(tmp_path, url), tmp_path / "cache")
    assert got == {"w": tmp_path / "cache" / "w"}
    assert (tmp_path / "cache" / "w" / "model.bin").read_bytes() == BODY
    marker = json.loads((tmp_path / "cache" / "w" / ".complete").read_text())
    assert marker == {"source": f"{url}/model.bin", "files": {"model.bin": DIGEST}}
    fetch(tmp_path, tmp_path / "cache")  # a second start downloads nothing
    assert len(state.requests) == 1


def test_a_wrong_sha256_fails_with_both_hashes_and_leaves_nothing(
    server: tuple[str, State], tmp_path: Path
) -> None:
    url, _ = server
    with pytest.raises(ModelLoadError) as caught:
        fetch(make_package(tmp_path, url, sha=WRONG), tmp_path / "cache")
    assert WRONG in str(caught.value)
    assert DIGEST in str(caught.value)
    assert not [p.name for p in (tmp_path / "cache" / "w").iterdir()]


def test_http_errors_and_unreachable_hosts_are_one_clear_error(
    server: tuple[str, State], tmp_path: Path
) -> None:
    url, _ = server
    (tmp_path / "a").mkdir()
    with pytest.raises(ModelLoadError, match=r"HTTP 404 .*check the URL"):
        fetch(make_package(tmp_path / "a", url + "/missing"), tmp_path / "cache")
    (tmp_path / "b").mkdir()
    with pytest.raises(ModelLoadError, match=r"cannot download https://127\.0\.0\.1:1/model\.bin"):
        fetch(make_package(tmp_path / "b", "https://127.0.0.1:1"), tmp_path / "cache")


def test_a_query_token_never_reaches_errors_or_logs(
    server: tuple[str, State], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url, state = server
    state.files["/secret.bin"] = b"x"
    spec = read_package(make_package(tmp_path, url)).spec.model_copy(
        update={"weights": [read_package(tmp_path).spec.weights[0].model_copy(
            update={"source": f"{url}/nothere?X-Amz-Signature=s3cr3t"})]}
    )  # fmt: skip
    with caplog.at_level(logging.INFO, "packager.weights"), pytest.raises(ModelLoadError) as caught:
        fetch_weights(spec, tmp_path / "cache", {})
    assert "s3cr3t" not in str(caught.value)
    assert "s3cr3t" not in caplog.text
    assert "fetching" in caplog.text


def test_an_interrupted_download_resumes_with_a_range_request(
    server: tuple[str, State], tmp_path: Path
) -> None:
    url, state = server
    state.cut = 300_000
    fetch(make_package(tmp_path, url), tmp_path / "cache")
    assert (tmp_path / "cache" / "w" / "model.bin").read_bytes() == BODY
    assert [r for _, r in state.requests] == [None, "bytes=300000-"]


def test_a_partial_left_by_an_earlier_start_is_resumed(server: tuple[str, State], tmp_path: Path) -> None:
    url, state = server
    (tmp_path / "cache" / "w").mkdir(parents=True)
    (tmp_path / "cache" / "w" / "model.bin.part").write_bytes(BODY[:1000])
    fetch(make_package(tmp_path, url), tmp_path / "cache")
    assert (tmp_path / "cache" / "w" / "model.bin").read_bytes() == BODY
    assert state.requests == [("/model.bin", "bytes=1000-")]
    assert not (tmp_path / "cache" / "w" / "model.bin.part").exists()


def test_a_server_without_range_support_sends_it_all_again(server: tuple[str, State], tmp_path: Path) -> None:
    url, state = server
    state.ranges, state.cut = False, 300_000
    fetch(make_package(tmp_path, url), tmp_path / "cache")
    assert (tmp_path / "cache" / "w" / "model.bin").read_bytes() == BODY
    assert len(state.requests) == 2


def test_concurrent_fetches_into_one_cache_download_once(server: tuple[str, State], tmp_path: Path) -> None:
    url, state = server
    state.delay = 0.3
    spec = read_package(make_package(tmp_path, url)).spec
    errors: list[BaseException] = []

    def one() -> None:
        try:
            fetch_weights(spec, tmp_path / "cache", {})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not errors
    assert len(state.requests) == 1
    assert (tmp_path / "cache" / "w" / "model.bin").read_bytes() == BODY


def test_load_fetches_start_weights_before_init(
    server: tuple[str, State], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = server
    monkeypatch.setenv("PACKAGER_WEIGHTS_DIR", str(tmp_path / "cache"))
    (tmp_path / "pkg").mkdir()
    with packager.load(make_package(tmp_path / "pkg", url)) as model:
        out = model.predict({})
    assert out == {"path": str(tmp_path / "cache" / "w" / "model.bin"), "size": len(BODY)}


def test_load_fails_cleanly_on_a_wrong_sha256(server: tuple[str, State], tmp_path: Path) -> None:
    url, _ = server
    (tmp_path / "pkg").mkdir()
    with pytest.raises(ModelLoadError, match=r"sha256 mismatch for model\.bin"):
        packager.load(make_package(tmp_path / "pkg", url, sha=WRONG), weights_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "w" / "model.bin").exists()


def test_pkg_weights_fetches_ahead_and_prints_where(server: tuple[str, State], tmp_path: Path) -> None:
    url, state = server
    (tmp_path / "pkg").mkdir()
    make_package(tmp_path / "pkg", url, fetch="build")
    result = CliRunner().invoke(cli, ["weights", str(tmp_path / "pkg"), "--dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"w: {tmp_path / 'c' / 'w'}\n"
    assert "weights w: ready" in result.stderr
    again = CliRunner().invoke(cli, ["weights", str(tmp_path / "pkg"), "--dir", str(tmp_path / "c")])
    assert again.exit_code == 0
    assert len(state.requests) == 1


def test_pkg_weights_failure_is_one_error_line(server: tuple[str, State], tmp_path: Path) -> None:
    url, _ = server
    make_package(tmp_path, url, sha=WRONG)
    result = CliRunner().invoke(cli, ["weights", str(tmp_path), "--dir", str(tmp_path / "c")])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith("error: sha256 mismatch for model.bin")
    assert result.stderr.endswith(errors[0] + "\n")


def hf_package(root: Path, extra: str = "") -> Path:
    (root / "model.py").write_text(PLAIN_MODEL)
    (root / "package.yaml").write_text(
        "spec_version: 1\nname: hub\n" + extra + "weights:\n  - source: hf://org/repo@abc123\n"
        "    allow_patterns: ['*.json']\n    ignore_patterns: ['*.bin']\n    fetch: start\n"
    )
    return root


def test_hf_without_huggingface_hub_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(
        ModelLoadError, match=r"need the huggingface_hub package.*add huggingface_hub to requirements"
    ):
        fetch(hf_package(tmp_path), tmp_path / "cache")


def test_hf_maps_the_source_onto_snapshot_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def snapshot_download(**kwargs: Any) -> str:
        calls.append(kwargs)
        Path(kwargs["local_dir"], "config.json").write_text("{}")
        return str(kwargs["local_dir"])

    monkeypatch.setitem(
        sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=snapshot_download)
    )
    spec = read_package(hf_package(tmp_path, "secrets: [hf_token]\n")).spec
    assert fetch_weights(spec, tmp_path / "cache", {"hf_token": "tok"}) == {
        "repo": tmp_path / "cache" / "repo"
    }
    assert calls == [
        {"repo_id": "org/repo", "revision": "abc123", "local_dir": str(tmp_path / "cache" / "repo"),
         "allow_patterns": ["*.json"], "ignore_patterns": ["*.bin"], "token": "tok"}
    ]  # fmt: skip
    fetch_weights(spec, tmp_path / "cache", {"hf_token": "tok"})
    assert len(calls) == 1  # complete: not fetched again


def test_hf_offline_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        ModelLoadError, match=r"downloading hf://org/repo@abc123 failed: .*HF_HUB_OFFLINE is set"
    ):
        fetch(hf_package(tmp_path), tmp_path / "cache")
    assert not (tmp_path / "cache" / "repo" / ".complete").exists()


@pytest.mark.parametrize(("source", "module", "pip"), [
    ("s3://bucket/models/m", "boto3", "boto3"), ("gs://bucket/m", "google.cloud.storage", "google-cloud-storage"),
])  # fmt: skip
def test_bucket_sources_without_their_sdk_name_it(
    source: str, module: str, pip: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    (tmp_path / "model.py").write_text(PLAIN_MODEL)
    (tmp_path / "package.yaml").write_text(
        f"spec_version: 1\nname: b\nweights: [{{source: '{source}', fetch: start}}]\n"
    )
    with pytest.raises(ModelLoadError, match=rf"need the {pip} package"):
        fetch(tmp_path, tmp_path / "cache")


def test_s3_downloads_every_object_under_the_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = {"models/m/config.json": b"{}", "models/m/sub/w.bin": b"w"}

    class Client:
        def get_paginator(self, name: str) -> Any:
            assert name == "list_objects_v2"
            return types.SimpleNamespace(paginate=lambda Bucket, Prefix: [
                {"Contents": [{"Key": k} for k in objects if k.startswith(Prefix)]}])  # fmt: skip

        def download_file(self, bucket: str, key: str, path: str) -> None:
            assert bucket == "bucket"
            Path(path).write_bytes(objects[key])

    monkeypatch.setitem(sys.modules, "boto3", types.SimpleNamespace(client=lambda name: Client()))
    digest = hashlib.sha256(b"w").hexdigest()
    (tmp_path / "model.py").write_text(PLAIN_MODEL)
    (tmp_path / "package.yaml").write_text(
        "spec_version: 1\nname: b\nweights:\n  - source: s3://bucket/models/m\n"
        f"    sha256: {{sub/w.bin: '{digest}'}}\n"
    )
    fetch(tmp_path, tmp_path / "cache")
    assert (tmp_path / "cache" / "m" / "config.json").read_bytes() == b"{}"
    assert (tmp_path / "cache" / "m" / "sub" / "w.bin").read_bytes() == b"w"


def test_the_server_runner_fetches_in_a_worker_thread_and_times_the_stage(
    server: tuple[str, State], tmp_path: Path
) -> None:
    """`pkg serve` and the container load through AsyncRunner: "fetch" is one more timed stage."""
    url, _ = server
    pipeline = Pipeline(read_package(make_package(tmp_path, url)), device="cpu", weights_dir=tmp_path / "c")
    metrics = Metrics("fetcher", dict)
    seen: list[str] = []
    runner = AsyncRunner(observe=lambda stage, s: (seen.append(stage), metrics.stage(stage, s)))
    try:
        asyncio.run(runner.run(pipeline.load_plan()))
    finally:
        runner.close()
    assert pipeline.ready
    assert seen == ["fetch", "init"]
    assert pipeline.model.size == len(BODY)


def test_load_does_not_fetch_build_weights_but_warns_when_they_are_missing(
    server: tuple[str, State], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url, state = server
    (tmp_path / "pkg").mkdir()
    make_package(tmp_path / "pkg", url, fetch="build")
    (tmp_path / "pkg" / "model.py").write_text(PLAIN_MODEL)
    with caplog.at_level(logging.WARNING, "packager.weights"):
        packager.load(tmp_path / "pkg", weights_dir=tmp_path / "cache").close()
    assert state.requests == []
    assert "weights w (fetch: build) are not in" in caplog.text
    assert f"run `pkg weights {tmp_path / 'pkg'}`" in caplog.text
    caplog.clear()
    CliRunner().invoke(cli, ["weights", str(tmp_path / "pkg"), "--dir", str(tmp_path / "cache")])
    with caplog.at_level(logging.WARNING, "packager.weights"):
        packager.load(tmp_path / "pkg", weights_dir=tmp_path / "cache").close()
    assert "not in" not in caplog.text
    assert len(state.requests) == 1
