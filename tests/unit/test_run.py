"""`pkg run` / `pkg push` decisions without an engine: GPUs, the driver, options, secret staging,
readiness, push targets and progress. tests/docker/test_run_push.py runs them for real."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from packager._cli import cli
from packager._container import _stage
from packager._container._engine import _count
from packager._container._gpu import (
    GpuRequest,
    check_driver,
    engine_gpu_driver,
    parse_gpus,
    parse_proc_version,
    plan_gpus,
    version_tuple,
)
from packager._container._push import Progress, Target, follow_push, parse_target, push_error
from packager._container._ready import ContainerExited, wait_ready
from packager._container._stage import parse_env, parse_user, remove_staged, stage_secrets
from packager._errors import PackagerError

SECRET_PACKAGE = Path(__file__).resolve().parents[1] / "fixtures" / "docker" / "secret"


@pytest.mark.parametrize(("value", "count"), [(None, None), ("all", -1), ("ALL", -1), ("0", 0), ("2", 2)])
def test_parse_gpus(value: str | None, count: int | None) -> None:
    assert parse_gpus(value) == count


@pytest.mark.parametrize("value", ["two", "-1", "1.5", ""])
def test_parse_gpus_refuses_what_is_not_a_count(value: str) -> None:
    with pytest.raises(PackagerError, match="give 'all', a number of GPUs, or 0"):
        parse_gpus(value)


@pytest.mark.parametrize(
    ("info", "driver"),
    [
        ({"Runtimes": {"runc": {}, "nvidia": {"path": "nvidia-container-runtime"}}}, "nvidia"),
        ({"Runtimes": {"runc": {}}, "DefaultRuntime": "nvidia"}, "nvidia"),
        ({"Runtimes": {"runc": {}}, "CDISpecDirs": ["/etc/cdi", "/var/run/cdi"]}, "cdi"),
        ({"Runtimes": {"runc": {}}, "CDISpecDirs": []}, None),
        ({}, None),
    ],
)
def test_engine_gpu_driver(info: dict[str, object], driver: str | None) -> None:
    assert engine_gpu_driver(info) == driver


def test_cpu_image_without_gpus_flag_gets_no_gpu_even_on_a_gpu_engine() -> None:
    assert plan_gpus(None, None, 0, "nvidia") is None


def test_accelerator_on_an_engine_without_nvidia_says_what_to_install() -> None:
    with pytest.raises(PackagerError) as caught:
        plan_gpus(None, "A10G", 1, None)
    message = str(caught.value)
    assert "A10G" in message
    assert "nvidia-container-toolkit" in message
    assert "--gpus 0" in message


def test_gpus_zero_runs_a_gpu_image_on_the_cpu() -> None:
    assert plan_gpus(0, "A10G", 1, None) is None
    assert plan_gpus(0, "A10G", 1, "nvidia") is None


def test_accelerator_count_is_requested_from_the_nvidia_runtime() -> None:
    assert plan_gpus(None, "A100:2", 2, "nvidia") == GpuRequest("nvidia", 2)


def test_gpus_flag_overrides_the_spec_count() -> None:
    assert plan_gpus(-1, "A100:2", 2, "nvidia") == GpuRequest("nvidia", -1)
    assert plan_gpus(1, None, 0, "nvidia") == GpuRequest("nvidia", 1)


def test_gpus_flag_on_a_cpu_engine_is_an_error_naming_the_flag() -> None:
    with pytest.raises(PackagerError, match="--gpus all but the Docker engine has no NVIDIA runtime"):
        plan_gpus(-1, None, 0, None)


def test_cdi_engines_get_device_ids() -> None:
    assert plan_gpus(-1, None, 0, "cdi") == GpuRequest("cdi", 0, ("nvidia.com/gpu=all",))
    assert plan_gpus(None, "A100:2", 2, "cdi") == GpuRequest(
        "cdi", 0, ("nvidia.com/gpu=0", "nvidia.com/gpu=1")
    )


@pytest.mark.parametrize(
    ("accelerator", "count"), [(None, 0), ("", 0), ("A10G", 1), ("A100:2", 2), ("H100:x", 1)]
)
def test_gpu_count_of_an_accelerator_label(accelerator: str | None, count: int) -> None:
    assert _count(accelerator) == count


def test_version_tuple_compares_numbers_not_text() -> None:
    assert version_tuple("535.104.05") == (535, 104, 5)
    assert version_tuple("1000.1") > version_tuple("560.28.03")
    with pytest.raises(PackagerError, match="not a driver version"):
        version_tuple("latest")


def test_old_host_driver_is_an_error_naming_both_versions() -> None:
    with pytest.raises(PackagerError) as caught:
        check_driver("535.104.05", "560.28.03")
    assert ">= 560.28.03" in str(caught.value)
    assert "this host has 535.104.05" in str(caught.value)


@pytest.mark.parametrize(
    ("host", "needed"),
    [("560.28.03", "560.28.03"), ("570.26", "560.28.03"), (None, "560.28.03"), ("535.1", None)],
)
def test_new_enough_or_unknown_driver_passes(host: str | None, needed: str | None) -> None:
    check_driver(host, needed)


@pytest.mark.parametrize(
    ("text", "version"),
    [
        (
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n",
            "535.104.05",
        ),
        ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.15  Release Build\n", "570.86.15"),
        ("no driver here", None),
    ],
)
def test_parse_proc_version(text: str, version: str | None) -> None:
    assert parse_proc_version(text) == version


def test_parse_env() -> None:
    assert parse_env(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    with pytest.raises(PackagerError, match="write KEY=VALUE"):
        parse_env(["NOVALUE"])
    with pytest.raises(PackagerError, match="--secret NAME"):
        parse_env(["PACKAGER_SECRET_TOKEN=abc"])


PASSWD = "root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/home/app:/bin/sh\nweb:x:33:44::/:/bin/false\n"


@pytest.mark.parametrize(
    ("user", "owner"),
    [("app", (1000, 1000)), ("web", (33, 44)), ("1000", (1000, 1000)), ("4242", (4242, 4242)),
     ("app:7", (1000, 7)), ("", (0, 0)), ("nobody", None)],
)  # fmt: skip
def test_parse_user(user: str, owner: tuple[int, int] | None) -> None:
    assert parse_user(user, PASSWD) == owner


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_staged_secrets_are_private_files_owned_by_the_container_user() -> None:
    owner = (os.getuid(), os.getgid())
    staged = stage_secrets({"token": "s3cr3t", "hf_token": "hf_x"}, owner)
    try:
        assert (mode(staged.parent), mode(staged)) == (0o700, 0o700)
        assert sorted(p.name for p in staged.iterdir()) == ["hf_token", "token"]
        assert (staged / "token").read_text() == "s3cr3t"
        assert {mode(p) for p in staged.iterdir()} == {0o600}
        assert {(p.stat().st_uid, p.stat().st_gid) for p in [staged, *staged.iterdir()]} == {owner}
    finally:
        remove_staged(staged)
    assert not staged.parent.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="handing files to another uid needs root")
def test_root_hands_staged_secrets_to_another_uid() -> None:
    staged = stage_secrets({"token": "v"}, (4242, 4343))
    try:
        assert ((staged / "token").stat().st_uid, (staged / "token").stat().st_gid) == (4242, 4343)
        assert (mode(staged), mode(staged / "token")) == (0o700, 0o600)
    finally:
        remove_staged(staged)


def test_without_rights_to_hand_over_files_are_readable_behind_a_private_parent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_stage.os, "geteuid", lambda: 4242)  # not root, not the container's uid
    staged = stage_secrets({"token": "v"}, (1000, 1000))
    try:
        assert (mode(staged.parent), mode(staged), mode(staged / "token")) == (0o700, 0o755, 0o644)
    finally:
        remove_staged(staged)


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ""])
def test_secret_names_that_are_not_file_names_are_refused(name: str) -> None:
    with pytest.raises(PackagerError, match="cannot be a file name"):
        stage_secrets({name: "v"}, None)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_wait_ready_polls_until_the_probe_answers() -> None:
    clock, answers = FakeClock(), iter([False, False, True])
    waited = wait_ready(
        lambda: next(answers), lambda: None, timeout=10, interval=0.5, clock=clock, sleep=clock.sleep
    )
    assert waited == 1.0


def test_wait_ready_stops_when_the_container_exits() -> None:
    clock, codes = FakeClock(), iter([None, 3])
    with pytest.raises(ContainerExited, match="exited with code 3 before it was ready") as caught:
        wait_ready(lambda: False, lambda: next(codes), timeout=10, clock=clock, sleep=clock.sleep)
    assert caught.value.code == 3


def test_wait_ready_gives_up_after_the_timeout() -> None:
    clock = FakeClock()
    with pytest.raises(PackagerError, match="not ready within 2 s"):
        wait_ready(lambda: False, lambda: None, timeout=2, interval=0.5, clock=clock, sleep=clock.sleep)
    assert clock.now == 102.0


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("127.0.0.1:5000/team/model:v1", Target("127.0.0.1:5000", "127.0.0.1:5000/team/model", "v1")),
        ("localhost:5000/model", Target("localhost:5000", "localhost:5000/model", "latest")),
        ("registry.example.com/a/b", Target("registry.example.com", "registry.example.com/a/b", "latest")),
        ("team/model:2", Target("docker.io", "team/model", "2")),
        ("localhost/model", Target("localhost", "localhost/model", "latest")),
    ],
)
def test_parse_target(text: str, target: Target) -> None:
    assert parse_target(text) == target


@pytest.mark.parametrize("text", ["", "reg.io/model@sha256:abc", "reg.io/model:", "reg.io/"])
def test_parse_target_refuses(text: str) -> None:
    with pytest.raises(PackagerError, match="REGISTRY/REPO"):
        parse_target(text)


TARGET = Target("reg.example:5000", "reg.example:5000/m", "v1")


@pytest.mark.parametrize(
    ("message", "says"),
    [
        ("no basic auth credentials", "run `docker login reg.example:5000` first"),
        ("unauthorized: authentication required", "run `docker login reg.example:5000` first"),
        ("denied: requested access to the resource is denied", "run `docker login reg.example:5000` first"),
        (
            'Get "http://reg.example:5000/v2/": dial tcp: connect: connection refused',
            "cannot reach the registry",
        ),
        ("dial tcp: lookup reg.example: no such host", "cannot reach the registry reg.example:5000"),
        ("manifest invalid", "pushing reg.example:5000/m:v1 failed: manifest invalid"),
    ],
)
def test_push_error(message: str, says: str) -> None:
    assert says in push_error(message, TARGET)


def test_progress_prints_status_changes_and_quarters() -> None:
    progress = Progress()
    events = [
        {"status": "The push refers to repository [reg/m]"},
        {"status": "Preparing", "id": "l1", "progressDetail": {}},
        {"status": "Pushing", "id": "l1", "progressDetail": {"current": 10, "total": 100}},
        {"status": "Pushing", "id": "l1", "progressDetail": {"current": 20, "total": 100}},
        {"status": "Pushing", "id": "l1", "progressDetail": {"current": 60, "total": 100}},
        {"status": "Pushed", "id": "l1", "progressDetail": {}},
        {"progressDetail": {}, "aux": {"Tag": "v1", "Digest": "sha256:abc", "Size": 5}},
    ]
    lines = [line for event in events for line in progress.feed(event)]
    assert lines == [
        "The push refers to repository [reg/m]",
        "l1: Preparing",
        "l1: Pushing 0%",
        "l1: Pushing 50%",
        "l1: Pushed",
    ]
    assert progress.digest == "sha256:abc"


def test_follow_push_turns_an_error_event_into_one_message(tmp_path: Path) -> None:
    with (tmp_path / "log").open("w") as out:
        with pytest.raises(PackagerError, match=r"docker login reg\.example:5000"):
            follow_push([{"status": "Preparing", "id": "l1"}, {"error": "unauthorized"}], TARGET, out)
        with pytest.raises(PackagerError, match="without a digest"):
            follow_push([{"status": "Pushed", "id": "l1"}], TARGET, out)
        assert follow_push([{"aux": {"Digest": "sha256:d"}}], TARGET, out) == "sha256:d"
    assert (tmp_path / "log").read_text() == "l1: Preparing\nl1: Pushed\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", str(SECRET_PACKAGE), "--gpus", "two"], "error: --gpus 'two': give 'all'"),
        (["run", str(SECRET_PACKAGE.parent), "--detach"], "is a directory without package.yaml"),
        (["run", str(SECRET_PACKAGE), "-e", "PACKAGER_SECRET_TOKEN=x"], "pass secrets with --secret NAME"),
        (["run", str(SECRET_PACKAGE), "--port", "70000"], "error: Invalid value for '--port'"),
        (["push", "img:1", "reg.io/m@sha256:abc"], "without a digest"),
    ],
)
def test_cli_refuses_bad_arguments_before_touching_docker(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
