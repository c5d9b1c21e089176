"""`pkg build --context-only`: the build context, the CUDA flavour table and the rendered Dockerfile.

The Dockerfiles are compared with snapshots in tests/fixtures/dockerfiles/ (the packager version
written as VERSION). After a deliberate change, regenerate them with
``PACKAGER_UPDATE_SNAPSHOTS=1 scripts/test tests/unit/test_build_context.py`` and review the diff.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomllib
import yaml
from click.testing import CliRunner
from packaging.requirements import Requirement

from packager import PackagerError, read_package
from packager._build import _cuda, _write, build_context, render_dockerfile, write_context
from packager._build._context import RUNTIME_REQUIREMENTS, BuildOptions
from packager._cli import cli
from packager._spec import ACCELERATORS
from packager._version import __version__

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = ROOT / "tests" / "fixtures" / "dockerfiles"
MODEL = "class Model:\n    def predict(self, inputs):\n        return inputs\n"


def make_package(parent: Path, name: str, **fields: Any) -> Path:
    root = parent / name
    root.mkdir(parents=True)
    spec = {"spec_version": 1, "name": name, **fields}
    (root / "package.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    (root / "model.py").write_text(MODEL, encoding="utf-8")
    return root


SNAPSHOT_CASES: dict[str, dict[str, Any]] = {
    "cpu": {"requirements": ["numpy>=1.26"], "environment": {"MODE": "fast"}},
    "cpu-torch": {"requirements": ["torch==2.13.0", "numpy"], "system_packages": ["libgomp1"]},
    "gpu-cu126": {"requirements": ["torch==2.7.1"], "resources": {"accelerator": "A10G"}},
    "gpu-cu130": {"requirements": ["torch>=2.9", "torchvision"], "resources": {"accelerator": "H100:2"}},
    "cuda-version": {
        "python_version": "3.12",
        "requirements": ["torch==2.6.0"],
        "resources": {"accelerator": "T4"},
        "build": {"cuda_version": "12.4"},
    },
    "weights-build": {  # fetch: build weights in their own stage, a token through a secret mount
        "secrets": ["hf_token", "store-token"],
        "requirements": ["huggingface_hub>=0.20"],
        "resources": {"accelerator": "L4"},
        "weights": [
            "hf://org/private-model@0123abcd",
            {"source": "https://weights.example.com/model.bin", "dir": "bin", "secret": "store-token"},
            {"source": "https://weights.example.com/open.bin", "fetch": "start"},
        ],
    },
    "base-image": {
        "system_packages": ["ffmpeg", "git"],
        "environment": {"GREETING": 'say "hi" for $5', "PATH_EXTRA": "C:\\x"},
        "build": {
            "base_image": "registry.example.com/ml/base:1",
            "extra_index_urls": ["https://pypi.example.com/simple"],
            "find_links": ["https://wheels.example.com/"],
            "commands": ["python -c 'print(1)'"],
        },
    },
}


@pytest.mark.parametrize("case", SNAPSHOT_CASES)
def test_dockerfile_snapshot(case: str, tmp_path: Path) -> None:
    package = read_package(make_package(tmp_path, case, **SNAPSHOT_CASES[case]))
    rendered = render_dockerfile(build_context(package)).replace(__version__, "VERSION")
    snapshot = SNAPSHOTS / f"{case}.Dockerfile"
    if os.environ.get("PACKAGER_UPDATE_SNAPSHOTS"):
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        snapshot.write_text(rendered, encoding="utf-8")
    assert snapshot.read_text(encoding="utf-8") == rendered, (
        f"{snapshot} differs: see this module's docstring"
    )


def test_classic_dockerfile_snapshot(tmp_path: Path) -> None:
    """The classic builder's Dockerfile: no BuildKit mounts, the requirements copied in."""
    package = read_package(make_package(tmp_path, "cpu", **SNAPSHOT_CASES["cpu"]))
    rendered = render_dockerfile(build_context(package), buildkit=False).replace(__version__, "VERSION")
    snapshot = SNAPSHOTS / "cpu-classic.Dockerfile"
    if os.environ.get("PACKAGER_UPDATE_SNAPSHOTS"):
        snapshot.write_text(rendered, encoding="utf-8")
    assert snapshot.read_text(encoding="utf-8") == rendered, (
        f"{snapshot} differs: see this module's docstring"
    )
    assert "--mount" not in rendered


def test_context_facts(tmp_path: Path) -> None:
    gpu = build_context(read_package(make_package(tmp_path, "g", **SNAPSHOT_CASES["gpu-cu126"])))
    assert (gpu.base_image, gpu.cuda_flavour, gpu.cuda_driver) == (
        "python:3.11-slim-bookworm",
        "cu126",
        "560.28.03",
    )
    assert gpu.torch_index_url == "https://download.pytorch.org/whl/cu126"
    cpu = build_context(read_package(make_package(tmp_path, "c", **SNAPSHOT_CASES["cpu-torch"])))
    assert cpu.torch_index_url == "https://download.pytorch.org/whl/cpu"
    assert (cpu.cuda_flavour, cpu.cuda_driver) == (None, None)
    plain = build_context(read_package(make_package(tmp_path, "p", resources={"accelerator": "L4"})))
    assert (plain.torch_index_url, plain.cuda_flavour, plain.compute_capability) == (None, None, "8.9")
    system = build_context(read_package(make_package(tmp_path, "s", **SNAPSHOT_CASES["cuda-version"])))
    assert system.base_image == "nvidia/cuda:12.4.1-runtime-ubuntu22.04"
    assert (system.cuda_flavour, system.cuda_driver, system.python) == ("cu124", "550.54.14", "python3.12")
    assert system.install_python


def test_requirements_file_is_read_for_torch(tmp_path: Path) -> None:
    root = make_package(tmp_path, "r", requirements_file="requirements.txt", resources={"accelerator": "T4"})
    (root / "requirements.txt").write_text("# deps\ntorch==2.4.1  # pinned\nnumpy\n")
    context = build_context(read_package(root))
    assert context.cuda_flavour == "cu121"
    assert context.requirements[-2:] == ("torch==2.4.1", "numpy")


@pytest.mark.parametrize(
    ("minor", "capability", "prefer", "expected"),
    [
        ("2.4", "7.5", None, "cu121"),  # PyPI's flavour for 2.4
        ("2.5", "8.0", None, "cu124"),
        ("2.7", "9.0", None, "cu126"),
        ("2.7", "10.0", None, "cu128"),  # sm_100 needs cu128+: the oldest shipped flavour that fits
        ("2.7", "9.0", "cu118", "cu118"),  # the system CUDA's flavour when torch ships it
        ("2.7", "9.0", "cu124", "cu126"),  # not shipped by 2.7: PyPI's flavour
        ("2.14", "7.5", None, "cu130"),
        ("2.14", "7.0", None, "cu128"),  # CUDA 13 dropped sm_70
    ],
)
def test_flavour_choice(minor: str, capability: str, prefer: str | None, expected: str) -> None:
    assert _cuda.choose_flavour(minor, capability, prefer=prefer).name == expected


def test_flavour_newer_than_torch_is_an_error() -> None:
    with pytest.raises(PackagerError, match=r"torch 2\.6 ships CUDA flavours cu118, cu124, cu126, none"):
        _cuda.choose_flavour("2.6", "10.0")


@pytest.mark.parametrize(
    ("line", "minor"),
    [("torch", "2.14"), ("torch==2.7.1", "2.7"), ("torch<2.6", "2.5"), ("torch~=2.4.0", "2.4")],
)
def test_torch_minor(line: str, minor: str) -> None:
    assert _cuda.torch_minor(Requirement(line)) == minor


@pytest.mark.parametrize("line", ["torch>=3", "torch==2.0.1"])
def test_torch_outside_the_table_is_an_error(line: str, tmp_path: Path) -> None:
    root = make_package(tmp_path, "t", requirements=[line], resources={"accelerator": "A100"})
    with pytest.raises(PackagerError, match=r"allows no torch version packager knows \(2\.1 to 2\.14\)"):
        build_context(read_package(root))


def test_unknown_cuda_version_is_an_error(tmp_path: Path) -> None:
    root = make_package(tmp_path, "u", build={"cuda_version": "12.3"})
    with pytest.raises(PackagerError, match=r"'12\.3' is not in packager's CUDA table; use one of 11\.8"):
        build_context(read_package(root))


def test_table_is_complete_and_consistent() -> None:
    table = _cuda.table()
    assert set(table["accelerators"]) == set(ACCELERATORS)
    assert _cuda.flavour_names() == ["cu118", "cu121", "cu124", "cu126", "cu128", "cu129", "cu130"]
    for minor, row in table["torch"].items():
        assert row["default"] in row["flavours"], minor
        assert set(row["flavours"]) <= set(_cuda.flavour_names()), minor
        for gpu, capability in table["accelerators"].items():
            _cuda.choose_flavour(minor, capability)  # every accepted GPU works with every torch listed
            assert gpu
    assert (ROOT / "packager" / "_build" / "data" / "cuda.json").is_file()  # inside the wheel's package


def test_runtime_requirements_are_pyprojects_without_the_build_side() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = {Requirement(line).name for line in pyproject["project"]["dependencies"]}
    runtime = {Requirement(line).name for line in RUNTIME_REQUIREMENTS}
    assert runtime == (names - {"click", "jinja2", "docker", "rich", "httpx"}) | {"httptools"}


def test_template_has_at_most_one_level_of_if() -> None:
    depth = deepest = 0
    text = (ROOT / "templates" / "Dockerfile.jinja").read_text()
    for tag in re.findall(r"{%-?\s*(if|endif)\b", text):
        depth += 1 if tag == "if" else -1
        deepest = max(deepest, depth)
    assert (deepest, depth) == (1, 0)


def test_env_value_with_a_line_break_is_refused(tmp_path: Path) -> None:
    root = make_package(tmp_path, "n", environment={"BAD": "two\nlines"})
    with pytest.raises(PackagerError, match="a line break cannot go into an image"):
        render_dockerfile(build_context(read_package(root)))


# --- write_context ---------------------------------------------------------------------------------


def test_write_context_contents(tmp_path: Path) -> None:
    root = make_package(tmp_path, "w", secrets=["hf.token"], requirements=["numpy"])
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"x")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref")
    (root / "utils.py").write_text("X = 1\n")
    out = tmp_path / "ctx"
    context = write_context(read_package(root), out)
    assert context.name == "w"
    assert sorted(p.name for p in (out / "package").iterdir()) == ["model.py", "package.yaml", "utils.py"]
    assert (out / "Dockerfile").read_text() == render_dockerfile(context)
    assert "**/__pycache__\n" in (out / ".dockerignore").read_text()
    assert (out / "requirements.txt").read_text().splitlines()[-1] == "numpy"
    runtime = out / "runtime" / "packager"
    assert (runtime / "_server" / "__main__.py").is_file()
    leftover = [
        p.name
        for p in runtime.iterdir()
        if p.name.startswith(("_cli.", "_cli_", "_build", "_resources", "__main__"))
    ]
    assert leftover == []
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ctx")] == []


def test_runtime_copy_serves_without_the_build_side(tmp_path: Path) -> None:
    out = tmp_path / "ctx"
    write_context(read_package(make_package(tmp_path, "rt")), out)
    # click still arrives with uvicorn (a dependency of it), never from packager's own modules
    code = (
        "import sys, packager, packager._server._main; "
        f"assert packager.__file__.startswith({str(out)!r}), packager.__file__; "
        "assert not {'jinja2', 'rich', 'docker'} & set(sys.modules), sorted(sys.modules); "
        "ours = [m for m in sys.modules if m in ('packager._cli', 'packager._resources') "
        "or m.startswith(('packager._cli_', 'packager._build'))]; "
        "assert not ours, ours"
    )
    env = {**os.environ, "PYTHONPATH": str(out / "runtime")}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_no_secret_value_reaches_the_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACKAGER_SECRET_HF_TOKEN", "s3cr3t-value-1234")
    out = tmp_path / "ctx"
    write_context(read_package(make_package(tmp_path, "sec", secrets=["hf.token"])), out)
    for path in out.rglob("*"):
        if path.is_file():
            assert b"s3cr3t-value-1234" not in path.read_bytes(), path


def test_wheelhouse_is_pips_only_source(tmp_path: Path) -> None:
    root = make_package(tmp_path, "off", build={"wheelhouse": "wheels"}, requirements=["torch==2.13.0"])
    (root / "wheels").mkdir()
    (root / "wheels" / "torch-2.13.0-cp311-none-any.whl").write_bytes(b"wheel")
    out = tmp_path / "ctx"
    context = write_context(read_package(root), out)
    assert context.pip_options == ("--no-index", "--find-links", "/tmp/packager/wheelhouse")
    assert "--no-index --find-links /tmp/packager/wheelhouse -r" in (out / "Dockerfile").read_text()
    assert [p.name for p in (out / "wheelhouse").iterdir()] == ["torch-2.13.0-cp311-none-any.whl"]
    assert not (out / "package" / "wheels").exists()  # not copied twice


def test_write_context_accepts_an_empty_dir_and_refuses_a_full_one(tmp_path: Path) -> None:
    package = read_package(make_package(tmp_path, "e"))
    (tmp_path / "empty").mkdir()
    write_context(package, tmp_path / "empty")
    assert (tmp_path / "empty" / "Dockerfile").is_file()
    with pytest.raises(PackagerError, match="already exists and is not empty; remove it"):
        write_context(package, tmp_path / "empty")
    with pytest.raises(PackagerError, match="is inside the package"):
        write_context(package, package.root / "ctx")


def test_a_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = read_package(make_package(tmp_path, "f"))

    def half_then_fail(staging: Path, *args: Any) -> None:
        (staging / "Dockerfile").write_text("half")
        raise OSError("disk full")

    monkeypatch.setattr(_write, "_fill", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_context(package, tmp_path / "ctx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


# --- pkg build -------------------------------------------------------------------------------------


def test_pkg_build_context_only(tmp_path: Path) -> None:
    root = make_package(tmp_path, "cli", **SNAPSHOT_CASES["gpu-cu126"])
    out = tmp_path / "ctx"
    result = CliRunner().invoke(cli, ["build", str(root), "--context-only", str(out)], prog_name="pkg")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"wrote build context to {out} (base python:3.11-slim-bookworm)",
        "torch cu126 for compute capability 8.6: needs an NVIDIA host driver >= 560.28.03",
        f"next: docker buildx build {out}",
    ]
    assert (out / "Dockerfile").is_file()


def test_pkg_build_refuses_a_full_dir_in_one_line(tmp_path: Path) -> None:
    root = make_package(tmp_path, "cli")
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "x").write_text("")
    result = CliRunner().invoke(cli, ["build", str(root), "--context-only", str(tmp_path / "ctx")])
    assert result.exit_code == 1
    assert len(result.output.splitlines()) == 1
    assert result.output.startswith("error: ")
    assert "not empty" in result.output


def test_pkg_build_help_ends_with_an_example() -> None:
    result = CliRunner().invoke(cli, ["build", "--help"], prog_name="pkg")
    assert result.exit_code == 0
    assert result.output.rstrip().splitlines()[-1].strip() == (
        "$ pkg build ./my-model --context-only ./my-model-context"
    )


def test_building_md_shows_the_table_as_it_is() -> None:
    text = (ROOT / "docs" / "building.md").read_text(encoding="utf-8")
    table = _cuda.table()
    cuda_rows = re.findall(
        r"^\| (cu\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) to ([\d.]+) \| `([^`]+)` \|$", text, re.M
    )
    assert cuda_rows == [
        (
            "cu" + v.replace(".", ""),
            v,
            r["driver"],
            *r["capabilities"],
            f"nvidia/cuda:{r['image_tag']}-runtime-ubuntu22.04",
        )
        for v, r in table["cuda"].items()
    ]
    torch_rows = dict(re.findall(r"^\| (2\.\d+) \| ([^|]+) \|$", text, re.M))
    assert torch_rows == {
        minor: ", ".join(f"**{f}**" if f == row["default"] else f for f in row["flavours"])
        for minor, row in table["torch"].items()
    }
    gpus = ", ".join(f"{gpu} {cap}" for gpu, cap in table["accelerators"].items())
    assert gpus in " ".join(text.split())


def test_base_image_option_overrides_the_spec_and_the_chosen_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_package(tmp_path, "based", **SNAPSHOT_CASES["cuda-version"])
    monkeypatch.delenv("PACKAGER_BASE_IMAGE", raising=False)
    chosen = build_context(read_package(root), BuildOptions(base_image="local/base:1"))
    assert (chosen.base_image, chosen.base_kind, chosen.python, chosen.install_python) == (
        "local/base:1",
        "custom",
        "python3",
        False,
    )
    assert chosen.cuda_flavour == "cu124"  # the torch flavour is still the spec's
    out = tmp_path / "ctx"
    monkeypatch.setenv("PACKAGER_BASE_IMAGE", "env/base:2")
    result = CliRunner().invoke(cli, ["build", str(root), "--context-only", str(out)], prog_name="pkg")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"wrote build context to {out} (base env/base:2)"
    assert (out / "Dockerfile").read_text().count("FROM env/base:2 AS deps") == 1
