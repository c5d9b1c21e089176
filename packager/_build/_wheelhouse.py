"""`pkg wheelhouse`: download every wheel an image of a package installs, for offline builds.

The list is the build context's own `requirements.txt` (the runtime's requirements, then the
spec's), so `pkg build --wheelhouse DIR --network none` finds everything it asks pip for. pip
downloads for the image, not for this machine: its Python (`python_version`) and Linux platform.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

from packager._build._context import BuildOptions, build_context
from packager._errors import PackagerError
from packager._spec_load import Package

ARCHES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
GLIBC = range(17, 37)  # manylinux_2_17 (manylinux2014) to 2_36: Debian bookworm's glibc


def platform_tags(platform: str) -> list[str]:
    """pip's --platform values for wheels that run on `platform` (a Docker platform)."""
    arch = ARCHES.get(platform)
    if arch is None:
        raise PackagerError(f"--platform {platform!r}: pkg wheelhouse knows {', '.join(ARCHES)}")
    tags = [f"manylinux_2_{minor}_{arch}" for minor in reversed(GLIBC)]
    return [*tags, f"manylinux2014_{arch}", f"linux_{arch}"]


def download_command(
    requirements: Path,
    dest: Path,
    *,
    python_version: str,
    platform: str,
    index_urls: tuple[str, ...] = (),
    constraint: Path | None = None,
) -> list[str]:
    """The `pip download` command line that fills `dest` for an image."""
    abi = "cp" + python_version.replace(".", "")
    command = [sys.executable, "-m", "pip", "download", "--dest", str(dest), "--only-binary=:all:"]
    command += ["--python-version", python_version, "--implementation", "cp"]
    for tag in (abi, "abi3", "none"):
        command += ["--abi", tag]
    for tag in platform_tags(platform):
        command += ["--platform", tag]
    for url in index_urls:
        command += ["--extra-index-url", url]
    if constraint is not None:
        command += ["--constraint", str(constraint)]
    return [*command, "--requirement", str(requirements)]


def fill_wheelhouse(
    package: Package,
    dest: str | Path,
    *,
    platform: str = "linux/amd64",
    constraint: Path | None = None,
    torch_index: bool = True,
    log: IO[str] | None = None,
) -> Path:
    """Download into `dest` (created if needed) every wheel the image of `package` installs."""
    out = log if log is not None else sys.stderr
    context = build_context(package, BuildOptions())
    target = Path(dest).resolve()
    target.mkdir(parents=True, exist_ok=True)
    indexes = (*((context.torch_index_url,) if torch_index and context.torch_index_url else ()),)
    with tempfile.TemporaryDirectory(prefix="packager-wheelhouse-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("\n".join(context.requirements) + "\n", encoding="utf-8")
        command = download_command(
            requirements,
            target,
            python_version=context.python_version,
            platform=platform,
            index_urls=(*indexes, *context.extra_index_urls),
            constraint=constraint,
        )
        code = _stream(command, out)
    if code != 0:
        raise PackagerError(
            f"pip could not download every wheel into {target} (exit code {code}; its "
            "output is above); check the requirements, or pin what has no wheel for the image "
            "with --constraint FILE"
        )
    return target


def _stream(command: list[str], out: IO[str]) -> int:
    """Run `command`, copying its output to `out` line by line; its exit code."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            out.write(line)
            out.flush()
    return process.returncode
