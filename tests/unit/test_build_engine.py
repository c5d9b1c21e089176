"""`pkg build` / `packager.build()` against a fake docker CLI: the builder choice, the command,
progress, and the one-line failure naming the step. tests/docker builds for real."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import packager
from packager import PackagerError
from packager._build import _engine
from packager._cli import cli

FAKE_DOCKER = r"""#!/usr/bin/env bash
echo "DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-} $*" >> "$FAKE_LOG"
case "$1" in
  version)
    if [[ $* == *Server* ]]; then [[ -n ${FAKE_NO_ENGINE:-} ]] && { echo "Cannot connect" >&2; exit 1; }
      echo 20.10.24; else echo "$FAKE_CLIENT"; fi ;;
  buildx) [[ -n ${FAKE_BUILDX:-} ]] ;;
  build)
    cp "${@: -1}/Dockerfile" "$FAKE_DOCKERFILE"
    echo "#1 [internal] load build definition from Dockerfile"
    echo "#1 DONE 0.0s"
    echo "#5 [stage-0 2/6] RUN --mount=type=cache,target=/root/.cache/pip     python -m pip install x"
    echo "#5 0.512 Collecting x"
    if [[ -n ${FAKE_FAIL:-} ]]; then
      echo "#5 1.204 ERROR: No matching distribution found for x"
      echo "#5 ERROR: executor failed running [/bin/sh -c python -m pip install x]: exit code: 1"
      echo "error: failed to solve: exit code: 1"
      exit 1
    fi
    echo "#5 DONE 1.3s" ;;
esac
"""


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "docker"
    script.write_text(FAKE_DOCKER)
    script.chmod(0o755)
    monkeypatch.setenv("PACKAGER_DOCKER", str(script))
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls"))
    monkeypatch.setenv("FAKE_DOCKERFILE", str(tmp_path / "Dockerfile.seen"))
    monkeypatch.setenv("FAKE_CLIENT", "20.10.24+dfsg1")
    monkeypatch.delenv("PACKAGER_BUILDKIT", raising=False)
    return tmp_path


def package(parent: Path) -> Path:
    root = parent / "pkg"
    root.mkdir()
    spec = {"spec_version": 1, "name": "fake-model", "build": {"base_image": "packager-base:bookworm"}}
    (root / "package.yaml").write_text(yaml.safe_dump(spec))
    (root / "model.py").write_text("class Model:\n    def predict(self, inputs):\n        return inputs\n")
    return root


def build_calls(fake: Path) -> list[str]:
    return [line for line in (fake / "calls").read_text().splitlines() if " build " in f" {line} "]


def test_buildkit_build_streams_progress_and_returns_the_tag(fake: Path) -> None:
    log = io.StringIO()
    assert packager.build(package(fake), tag="m:1", no_cache=True, log=log) == "m:1"
    (call,) = build_calls(fake)
    assert call.startswith("DOCKER_BUILDKIT=1 build --tag m:1 --no-cache --progress=plain ")
    assert "#5 DONE 1.3s" in log.getvalue()
    assert "RUN --mount=type=cache" in (fake / "Dockerfile.seen").read_text()
    assert not Path(call.split()[-1]).exists()  # the temporary context is gone


@pytest.mark.parametrize(
    ("client", "buildx", "expected"),
    [("20.10.24+dfsg1", "", True), ("28.0.1", "", False), ("28.0.1", "1", True)],
)
def test_buildkit_where_the_client_runs_it(
    fake: Path, monkeypatch: pytest.MonkeyPatch, client: str, buildx: str, expected: bool
) -> None:
    monkeypatch.setenv("FAKE_CLIENT", client)
    monkeypatch.setenv("FAKE_BUILDX", buildx)
    assert _engine.has_buildkit(os.environ["PACKAGER_DOCKER"]) is expected
    monkeypatch.setenv("PACKAGER_BUILDKIT", "0")
    assert _engine.has_buildkit(os.environ["PACKAGER_DOCKER"]) is False


def test_classic_builder_without_buildkit_says_so(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CLIENT", "28.0.1")
    log = io.StringIO()
    packager.build(package(fake), tag="m:1", log=log)
    (call,) = build_calls(fake)
    assert call.startswith("DOCKER_BUILDKIT=0 build --tag m:1 --force-rm /")
    assert "using the classic builder (no pip cache mount" in log.getvalue()
    dockerfile = (fake / "Dockerfile.seen").read_text()
    assert "--mount" not in dockerfile
    assert "COPY requirements.txt /tmp/packager/requirements.txt" in dockerfile


def test_failure_names_the_step_and_its_log_tail(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_FAIL", "1")
    with pytest.raises(PackagerError) as caught:
        packager.build(package(fake), tag="m:1", log=io.StringIO())
    assert str(caught.value) == (
        "building m:1 failed at step [2/6] RUN python -m pip install x; its log ends:\n"
        "Collecting x\nERROR: No matching distribution found for x"
    )


def test_classic_failure_names_the_step() -> None:
    steps = _engine._Steps()
    for line in [
        "Step 6/17 : COPY requirements.txt /tmp/packager/requirements.txt",
        " ---> 1f2e",
        "Step 7/17 : RUN python -m pip install --no-cache-dir -r /tmp/packager/requirements.txt",
        " ---> Running in 7bfa",
        "ERROR: No matching distribution found for x",
        "The command '/bin/sh -c python -m pip install' returned a non-zero code: 1",
    ]:
        steps.feed(line)
    assert steps.failure("m:1", 1).splitlines() == [
        "building m:1 failed at step [7/17] RUN python -m pip install --no-cache-dir -r "
        "/tmp/packager/requirements.txt; its log ends:",
        "ERROR: No matching distribution found for x",
        "The command '/bin/sh -c python -m pip install' returned a non-zero code: 1",
    ]


def test_pkg_build_failure_is_one_line(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_FAIL", "1")
    result = CliRunner().invoke(cli, ["build", str(package(fake)), "--tag", "m:1"], prog_name="pkg")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "error: building m:1 failed at step [2/6] RUN python -m pip install x; its log ends: "
        "Collecting x ERROR: No matching distribution found for x"
    )


def test_pkg_build_prints_the_image_and_defaults_the_tag(fake: Path) -> None:
    result = CliRunner().invoke(cli, ["build", str(package(fake))], prog_name="pkg")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "fake-model:latest"


def test_no_engine_is_a_clear_error(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_NO_ENGINE", "1")
    with pytest.raises(
        PackagerError, match=r"cannot reach the Docker engine \(Cannot connect\); start dockerd"
    ):
        packager.build(package(fake), tag="m:1")


def test_no_client_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PACKAGER_DOCKER", raising=False)
    monkeypatch.setattr(_engine, "PREFERRED_CLIENT", "/nonexistent/docker")
    monkeypatch.setattr(_engine.shutil, "which", lambda name: None)
    with pytest.raises(PackagerError, match=r"no docker client found; install Docker"):
        _engine.docker_client()
