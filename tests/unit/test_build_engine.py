"""`pkg build` / `packager.build()` against a fake docker CLI: the builder choice, the command,
progress, and the one-line failure naming the step. tests/docker builds for real."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import packager
from packager import PackagerError
from packager._build import _engine, _steps
from packager._build._progress import Progress
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
    for arg in "$@"; do [[ $arg == --secret=* ]] && echo "SECRET ${arg%%,src=*} $(cat "${arg##*src=}")" >> "$FAKE_LOG"; done
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
    monkeypatch.delenv("PACKAGER_CA_BUNDLE", raising=False)
    return tmp_path


def package(parent: Path, **fields: object) -> Path:
    root = parent / "pkg"
    root.mkdir()
    spec = {
        "spec_version": 1,
        "name": "fake-model",
        "build": {"base_image": "packager-base:bookworm"},
        **fields,
    }
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
        "Collecting x\nERROR: No matching distribution found for x\n"
        "hint: pip found no release of x for the image's Python and platform: check its name and "
        "version in requirements, or put its wheel in the wheelhouse (--wheelhouse DIR)"
    )


def test_classic_failure_names_the_step() -> None:
    steps = _steps.Steps()
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
        "hint: pip found no release of x for the image's Python and platform: check its name and "
        "version in requirements, or put its wheel in the wheelhouse (--wheelhouse DIR)",
    ]


@pytest.mark.parametrize(
    ("line", "start"),
    [
        ("E: Unable to locate package libfoo-dev", "apt has no package libfoo-dev"),
        ("SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED]", "TLS verification failed"),
        ("Temporary failure in name resolution", "the build could not reach the network"),
        ("pull access denied for python, repository does not exist", "the base image cannot be pulled"),
        ("ERROR: process did not complete successfully: exit code: 137", "a step was killed"),
    ],
)
def test_a_failure_gets_a_hint(line: str, start: str) -> None:
    steps = _steps.Steps()
    steps.feed("#7 [3/6] RUN apt-get update")
    steps.feed(f"#7 0.51 {line}")
    steps.feed("#7 ERROR: process failed")
    assert steps.failure("m:1", 1).splitlines()[-1].startswith(f"hint: {start}")


def test_no_hint_for_an_unknown_failure() -> None:
    steps = _steps.Steps()
    steps.feed("#7 [3/6] RUN make")
    steps.feed("#7 0.51 make: *** [all] Error 2")
    steps.feed("#7 ERROR: process failed")
    assert not any(line.startswith("hint:") for line in steps.failure("m:1", 1).splitlines())


def test_pkg_build_failure_is_one_line(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_FAIL", "1")
    result = CliRunner().invoke(cli, ["build", str(package(fake)), "--tag", "m:1"], prog_name="pkg")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "error: building m:1 failed at step [2/6] RUN python -m pip install x; its log ends: "
        "Collecting x ERROR: No matching distribution found for x hint: pip found no release of x "
        "for the image's Python and platform: check its name and version in requirements, or put "
        "its wheel in the wheelhouse (--wheelhouse DIR)"
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


# --- what goes into the image: secrets, CA bundle, wheelhouse, network, platform, notes ---------

SECRET_WEIGHTS = {
    "secrets": ["store-token"],
    "weights": [{"source": "https://weights.example.com/m.bin", "dir": "m", "secret": "store-token"}],
}


def test_a_build_secret_goes_through_a_secret_file_only(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACKAGER_SECRET_STORE_TOKEN", "v4lue-of-the-token")
    log = io.StringIO()
    packager.build(package(fake, **SECRET_WEIGHTS), tag="m:1", log=log)
    (call,) = build_calls(fake)
    assert "--secret=id=store-token,src=/" in call
    assert "v4lue-of-the-token" not in call + log.getvalue()
    assert "SECRET --secret=id=store-token v4lue-of-the-token" in (fake / "calls").read_text()
    source = call.split("--secret=id=store-token,src=")[1].split()[0]
    assert not Path(source).exists()  # removed with the build's temporary directory
    assert "--mount=type=secret,id=store-token" in (fake / "Dockerfile.seen").read_text()


def test_a_missing_build_secret_says_where_to_set_it(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PACKAGER_SECRET_STORE_TOKEN", raising=False)
    monkeypatch.setenv("PACKAGER_SECRETS_DIR", str(fake / "no-secrets"))
    with pytest.raises(PackagerError, match=r"'store-token': set \$PACKAGER_SECRET_STORE_TOKEN"):
        packager.build(package(fake, **SECRET_WEIGHTS), tag="m:1", log=io.StringIO())
    assert build_calls(fake) == []


def test_the_classic_builder_refuses_a_build_secret(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CLIENT", "28.0.1")
    monkeypatch.setenv("PACKAGER_SECRET_STORE_TOKEN", "v")
    with pytest.raises(PackagerError, match=r"need the secret store-token .* set 'fetch: start'"):
        packager.build(package(fake, **SECRET_WEIGHTS), tag="m:1", log=io.StringIO())
    assert build_calls(fake) == []


def test_options_reach_docker_build(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = fake / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nfake\n")
    monkeypatch.setenv("PACKAGER_CA_BUNDLE", str(bundle))
    wheels = fake / "wheels"
    wheels.mkdir()
    root = package(fake, resources={"accelerator": "A10G"}, requirements=["torch==2.7.1"])
    args = ["build", str(root), "--wheelhouse", str(wheels), "--network", "none", "--platform", "linux/amd64"]
    result = CliRunner().invoke(cli, args, prog_name="pkg")
    assert result.exit_code == 0, result.output
    (call,) = build_calls(fake)
    assert " --network none --platform linux/amd64 --secret=id=packager-ca-bundle,src=" in call
    dockerfile = (fake / "Dockerfile.seen").read_text()
    assert "PIP_CERT=/run/secrets/packager-ca-bundle " in dockerfile
    assert "--no-index --find-links /tmp/packager/wheelhouse" in dockerfile
    assert "needs an NVIDIA host driver >= 560.28.03" in result.output  # the driver note, on stderr
    assert 'dev.packager.cuda.driver="560.28.03"' in dockerfile


def test_the_classic_builder_says_it_leaves_the_ca_bundle(
    fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLIENT", "28.0.1")
    bundle = fake / "ca.pem"
    bundle.write_text("pem")
    log = io.StringIO()
    packager.build(package(fake), tag="m:1", log=log, ca_bundle=bundle)
    assert "leaves the CA bundle in the image, at /usr/local/share/packager/ca-bundle.crt" in log.getvalue()
    assert (
        "COPY ca-bundle.crt /usr/local/share/packager/ca-bundle.crt" in (fake / "Dockerfile.seen").read_text()
    )
    assert "--secret" not in build_calls(fake)[0]


def test_schema_labels_or_one_note_when_imports_are_missing(fake: Path) -> None:
    root = package(fake)
    (root / "model.py").write_text(
        "from pydantic import BaseModel\n\n\nclass In(BaseModel):\n    text: str\n\n\n"
        "class Model:\n    def predict(self, inputs: In) -> str:\n        return inputs.text\n"
    )
    packager.build(root, tag="m:1", log=io.StringIO())
    dockerfile = (fake / "Dockerfile.seen").read_text()
    assert 'dev.packager.schema.output="{\\"type\\":\\"string\\"}"' in dockerfile
    assert '\\"required\\":[\\"text\\"]' in dockerfile
    (root / "model.py").write_text("import nosuchmodule_xyz\n\n\nclass Model:\n    pass\n")
    log = io.StringIO()
    packager.build(root, tag="m:2", log=log)
    notes = [line for line in log.getvalue().splitlines() if "schema" in line]
    assert len(notes) == 1
    assert notes[0].startswith("packager: predict schema left out of the labels: ")
    assert "nosuchmodule_xyz" in notes[0]
    assert "dev.packager.schema" not in (fake / "Dockerfile.seen").read_text()


def test_base_image_reaches_the_dockerfile(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PACKAGER_BASE_IMAGE", raising=False)
    root = package(fake)
    packager.build(root, tag="m:1", log=io.StringIO(), base_image="local/base:7")
    assert "FROM local/base:7 AS deps" in (fake / "Dockerfile.seen").read_text()
    monkeypatch.setenv("PACKAGER_BASE_IMAGE", "env/base:8")
    packager.build(root, tag="m:1", log=io.StringIO())
    assert "FROM env/base:8 AS deps" in (fake / "Dockerfile.seen").read_text()


BUILDKIT_LINES = [
    "#1 [internal] load build definition from Dockerfile\n",
    "#1 DONE 0.0s\n",
    "#5 [deps 2/4] RUN python3 -m venv /opt/venv\n",
    "#5 CACHED\n",
    "#6 [deps 3/4] RUN --mount=type=cache,target=/root/.cache/pip python -m pip install -r x\n",
    "#6 1.20 Collecting numpy\n",
    "#6 DONE 3.1s\n",
]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_progress_passes_dockers_lines_and_sums_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PACKAGER_PROGRESS", raising=False)
    out = io.StringIO()
    steps = _steps.Steps()
    with Progress(out, "m:1", steps) as progress:
        for line in BUILDKIT_LINES:
            progress.line(line)
    progress.finish(True)
    lines = out.getvalue().splitlines()
    assert lines[:-1] == [line.rstrip("\n") for line in BUILDKIT_LINES]
    assert re.fullmatch(r"packager: built m:1 in \d+\.\d s \(2 steps, 1 cached\)", lines[-1])
    assert steps.now() == "[deps 3/4] RUN python -m pip install -r x"  # mounts left out


def test_terminal_progress_keeps_dockers_lines_back_unless_it_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PACKAGER_PROGRESS", raising=False)
    shown = {}
    for ok in (True, False):
        out = Terminal()
        with Progress(out, "m:1", _steps.Steps()) as progress:
            for line in BUILDKIT_LINES:
                progress.line(line)
        progress.finish(ok)
        shown[ok] = out.getvalue()
    assert "Collecting numpy" not in shown[True]
    assert "packager: built m:1 in" in shown[True]
    assert "#6 1.20 Collecting numpy" in shown[False]  # the end of docker's log, for the failure
    assert "packager: failed to build m:1 in" in shown[False]
    monkeypatch.setenv("PACKAGER_PROGRESS", "plain")
    out = Terminal()
    with Progress(out, "m:1", _steps.Steps()) as progress:
        progress.line(BUILDKIT_LINES[5])
    assert out.getvalue() == BUILDKIT_LINES[5]


def test_classic_cached_steps_are_counted() -> None:
    steps = _steps.Steps()
    for line in ["Step 1/3 : FROM base", "Step 2/3 : RUN a", " ---> Using cache", "Step 3/3 : COPY x y"]:
        steps.feed(line)
    assert (len(steps.steps()), len(steps.cached)) == (3, 1)
