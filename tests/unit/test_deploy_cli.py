"""`pkg deploy`: the files it writes (snapshots), the output folder, option errors and --apply.

The snapshots in tests/fixtures/deploy/*.yaml are every file one command writes, each after a
`# file: NAME` line. After a deliberate change, rewrite them with PACKAGER_UPDATE_SNAPSHOTS=1
and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from packager._cli import cli
from packager._deploy._output import HEADER

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "deploy"
GPU = str(FIXTURES / "gpu-model")
CPU = str(ROOT / "library" / "minilm")
LLAMA = str(ROOT / "library" / "llama-2-7b-chat")  # a GPU catalogue entry, with a secret
IMAGE = "registry.example.com/models/{}:1"
SNAPSHOTS = {
    "minilm-kubernetes": [CPU, "--target", "kubernetes", "--hpa", "cpu", "--pdb"],
    "minilm-kserve": [CPU, "--target", "kserve"],
    "minilm-compose": [CPU, "--target", "compose"],
    "gpu-kubernetes": [GPU, "--target", "kubernetes", "--hpa", "queue", "--pdb", "--namespace", "ml",
                       "--replicas", "2", "--node-labels", "gke"],
    "gpu-kserve": [GPU, "--target", "kserve", "--secrets-as", "volume", "--max-replicas", "3"],
    "gpu-compose": [GPU, "--target", "compose", "--replicas", "2"],
    "llama-kubernetes": [LLAMA, "--target", "kubernetes", "--hpa", "queue", "--node-labels", "eks"],
    "llama-kserve": [LLAMA, "--target", "kserve"],
}  # fmt: skip


def pkg(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="pkg")


def written(out: Path) -> str:
    return "".join(f"# file: {p.name}\n{p.read_text()}" for p in sorted(out.iterdir()))


@pytest.mark.parametrize("case", list(SNAPSHOTS))
def test_output_matches_the_snapshot(case: str, tmp_path: Path) -> None:
    args = SNAPSHOTS[case]
    image = IMAGE.format(case.split("-")[0])
    result = pkg("deploy", *args, "--image", image, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    text = written(tmp_path / "out")
    snapshot = FIXTURES / f"{case}.yaml"
    if os.environ.get("PACKAGER_UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(text)
    assert text == snapshot.read_text(), f"{snapshot.name} differs: PACKAGER_UPDATE_SNAPSHOTS=1 to rewrite"
    assert f"image: {image}" in text


def test_no_secret_value_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACKAGER_SECRET_HF_TOKEN", "hf_value_that_must_not_leak")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "api-key").write_text("key_value_that_must_not_leak")
    monkeypatch.setenv("PACKAGER_SECRETS_DIR", str(tmp_path / "secrets"))
    for target in ("kubernetes", "kserve", "compose"):
        out = tmp_path / target
        assert pkg("deploy", GPU, "--image", "i:1", "--target", target, "--out", out).exit_code == 0
        assert "must_not_leak" not in written(out)
        assert "hf_token" in written(out)


def test_prints_the_paths_and_what_to_run_next(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    result = pkg("deploy", CPU, "--image", "i:1", "--target", "kubernetes", "--out", out)
    assert result.output.splitlines() == [
        f"wrote {out / 'deployment.yaml'}",
        f"wrote {out / 'service.yaml'}",
        f"next: kubectl apply -f {out}",
    ]
    result = pkg("deploy", CPU, "--image", "i:1", "--target", "compose", "--out", out / "c")
    assert result.output.splitlines()[-1] == f"next: docker compose -f {out / 'c' / 'compose.yaml'} up -d"


def test_running_again_replaces_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    assert (
        pkg("deploy", CPU, "--image", "i:1", "--target", "kubernetes", "--hpa", "cpu", "--out", out).exit_code
        == 0
    )
    assert (out / "hpa.yaml").exists()
    assert pkg("deploy", CPU, "--image", "i:2", "--target", "kubernetes", "--out", out).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["deployment.yaml", "service.yaml"]  # no stale hpa.yaml
    assert "image: i:2" in (out / "deployment.yaml").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["k8s"]  # no staging folder left behind


def test_refuses_a_folder_holding_other_files(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("kind: ConfigMap\n")
    result = pkg("deploy", CPU, "--image", "i:1", "--target", "kserve", "--out", tmp_path)
    assert result.exit_code == 1
    assert result.output == (
        f"error: --out {tmp_path} holds mine.yaml, which pkg deploy did not write; give an empty or new folder\n"
    )
    assert (tmp_path / "mine.yaml").read_text() == "kind: ConfigMap\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.yaml"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "compose", "--hpa", "cpu"], "error: --hpa applies to --target kubernetes, not compose"),
        (["--target", "kserve", "--pdb"], "error: --pdb applies to --target kubernetes, not kserve"),
        (["--target", "kubernetes", "--host", "0.0.0.0"], "error: --host applies to --target compose or ray, not kubernetes"),
        (["--target", "compose", "--apply"], "error: --apply runs kubectl, for --target kubernetes or kserve, not compose"),
        (["--target", "kubernetes", "--node-selector", "pool"], "error: --node-selector 'pool': expected KEY=VALUE"),
        (["--target", "kubernetes", "--replicas", "3", "--max-replicas", "2"], "error: --max-replicas 2 is below --replicas 3"),
        (["--target", "helm"], "error: Invalid value for '--target': 'helm' is not one of 'kubernetes', 'kserve', 'compose', 'ray' (see `pkg deploy --help`)"),
        (["--target", "compose", "--run"], "error: --run is for --target ray, not compose (kubernetes and kserve: --apply)"),
        (["--target", "kserve", "--address", "http://head:8265"], "error: --address applies to --target ray, not kserve"),
    ],
)  # fmt: skip
def test_option_errors_are_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = pkg("deploy", CPU, "--image", "i:1", "--out", tmp_path / "out", *args)
    assert result.exit_code == 1
    assert result.output.splitlines() == [message]
    assert not (tmp_path / "out").exists()


# --- --apply with a stand-in kubectl on PATH ------------------------------------------------------


def fake_kubectl(bin_dir: Path, *, context: bool, apply_rc: int = 0) -> Path:
    """A kubectl that records its arguments and answers like the real one."""
    log = bin_dir / "calls.log"
    bin_dir.mkdir(exist_ok=True)
    script = f"""#!/bin/sh
echo "$*" >> {log}
if [ "$1 $2" = "config current-context" ]; then
  {"echo kind-test" if context else "echo 'error: current-context is not set' >&2; exit 1"}
fi
if [ "$1" = apply ]; then
  [ {apply_rc} -eq 0 ] || {{ echo 'error: the server could not find the requested resource' >&2; exit {apply_rc}; }}
  for f in "$3"/*.yaml; do echo "applied $(basename "$f")"; done
fi
"""
    (bin_dir / "kubectl").write_text(script)
    (bin_dir / "kubectl").chmod(0o755)
    return log


def test_apply_runs_kubectl_on_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = fake_kubectl(tmp_path / "bin", context=True)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "isvc"
    result = pkg("deploy", CPU, "--image", "i:1", "--target", "kserve", "--out", out, "--apply")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"wrote {out / 'inferenceservice.yaml'}",
        "applied inferenceservice.yaml",
    ]
    assert log.read_text().splitlines() == ["config current-context", f"apply -f {out}"]


def test_apply_without_a_context_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = fake_kubectl(tmp_path / "bin", context=False)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "k8s"
    result = pkg("deploy", CPU, "--image", "i:1", "--target", "kubernetes", "--out", out, "--apply")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith("error: --apply: kubectl has no current context")
    assert f"kubectl apply -f {out}" in result.output
    assert log.read_text().splitlines() == ["config current-context"]
    assert (out / "deployment.yaml").exists()  # the files are written all the same


def test_apply_failure_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_kubectl(tmp_path / "bin", context=True, apply_rc=1)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "k8s"
    result = pkg("deploy", CPU, "--image", "i:1", "--target", "kubernetes", "--out", out, "--apply")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"error: kubectl apply -f {out} failed (context kind-test): "
        "error: the server could not find the requested resource"
    )


def test_apply_without_kubectl_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    result = pkg(
        "deploy", CPU, "--image", "i:1", "--target", "kubernetes", "--out", tmp_path / "o", "--apply"
    )
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith("error: --apply needs kubectl, which is not on PATH")


def test_every_file_carries_the_header(tmp_path: Path) -> None:
    out = tmp_path / "k"
    pkg("deploy", GPU, "--image", "i:1", "--target", "kubernetes", "--hpa", "cpu", "--pdb", "--out", out)
    assert len(list(out.iterdir())) == 4
    assert all(p.read_text().startswith(HEADER) for p in out.iterdir())


def test_every_target_but_ray_needs_an_image(tmp_path: Path) -> None:
    result = pkg("deploy", CPU, "--target", "kserve", "--out", tmp_path / "out")
    assert (result.exit_code, result.output) == (
        1,
        "error: --target kserve needs --image IMAGE (build one with `pkg build`)\n",
    )
    assert pkg("deploy", CPU, "--target", "ray", "--out", tmp_path / "ray").exit_code == 0


def fake_serve(bin_dir: Path, rc: int = 0) -> Path:
    bin_dir.mkdir()
    log = bin_dir / "calls"
    script = bin_dir / "serve"
    script.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexit {rc}\n')
    script.chmod(0o755)
    return log


def test_run_hands_the_config_to_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = fake_serve(tmp_path / "bin")
    monkeypatch.setattr("packager._deploy._ray_run.sys.executable", str(tmp_path / "nowhere" / "python"))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "out"
    assert pkg("deploy", CPU, "--target", "ray", "--out", out, "--run").exit_code == 0
    deployed = pkg("deploy", CPU, "--target", "ray", "--out", out, "--run", "--address", "http://head:8265")
    assert deployed.exit_code == 0
    assert log.read_text().splitlines() == [
        f"run {out / 'ray-serve.yaml'}",
        f"deploy {out / 'ray-serve.yaml'} --address http://head:8265",
    ]


def test_run_failure_and_missing_serve_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("packager._deploy._ray_run.sys.executable", str(tmp_path / "nowhere" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    missing = pkg("deploy", CPU, "--target", "ray", "--out", tmp_path / "a", "--run")
    assert missing.exit_code == 1
    assert missing.output.splitlines()[-1].startswith("error: --run needs Ray Serve's `serve` command")
    fake_serve(tmp_path / "bin", rc=3)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    failed = pkg("deploy", CPU, "--target", "ray", "--out", tmp_path / "b", "--run")
    assert failed.output.splitlines()[-1] == "error: `serve run` exited with code 3; its output is above"
