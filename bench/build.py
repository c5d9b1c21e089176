"""Build benchmark: `pkg build` on the local Docker engine, against baselines from the same run.

    .venv/bin/python bench/build.py [--write] [--rebuilds N] [--starts N]

Needs a Docker engine and the base image packager-base:bookworm (`scripts/docker-setup`); nothing
is pulled. It builds a representative package (tests/fixtures/docker/hooks plus numpy) with
--no-cache, rebuilds it after model.py-only edits, compares an image of the hooks package with
an image of the same files built without packager, measures what the image holds against its
size, and times container start to ready. Every image and container it makes is removed at the
end. See bench/README.md for the method and caveats.
"""

from __future__ import annotations

import argparse
import http.client
import io
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _common import ROOT, Row, machine, median, table, write_section

import packager
from packager._build._engine import docker_client

BASE = "packager-base:bookworm"
HOOKS = ROOT / "tests" / "fixtures" / "docker" / "hooks"
NAME = "docker-hooks"
MB = 1e6
TRUSS_RUNTIME_MB = 194  # Truss's in-image server requirements (issue #8); a reference, not measured
# A person's image of the same package without packager: a venv, a user, the files.
PLAIN_DOCKERFILE = f"""FROM {BASE}
RUN python3 -m venv /opt/venv && useradd --create-home --uid 1000 app
COPY model.py package.yaml /app/package/
USER app
"""
# What an image adds over its base, as files: the venv, the runtime, the package, the weights dir.
INSTALLED = ("/opt/venv", "/opt/packager", "/app", "/var/lib/packager", "/home/app")


def docker(*args: str, timeout: float = 600) -> str:
    done = subprocess.run(
        [docker_client(), *args], capture_output=True, text=True, check=False, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


class Images:
    """Tags made by this run and the images built under them (a rebuild under the same tag leaves
    the previous image untagged); all removed at the end."""

    def __init__(self) -> None:
        self.run = uuid.uuid4().hex[:8]
        self.tags: list[str] = []
        self.ids: set[str] = set()

    def tag(self, what: str) -> str:
        self.tags.append(f"packager-bench-{what}-{self.run}:latest")
        return self.tags[-1]

    def remove(self) -> None:
        for image in (*self.tags, *self.ids):
            subprocess.run(
                [docker_client(), "image", "rm", "--force", image], capture_output=True, check=False
            )


def make_package(where: Path, requirements: list[str]) -> Path:
    """A copy of the hooks fixture with `requirements` added to its spec."""
    package = where / f"hooks-{len(requirements)}"
    shutil.copytree(HOOKS, package)
    if requirements:
        with (package / "package.yaml").open("a", encoding="utf-8") as spec:
            spec.write("requirements:\n" + "".join(f"  - {r}\n" for r in requirements))
    return package


def timed_build(package: Path, tag: str, images: Images, *, no_cache: bool = False) -> float:
    log = io.StringIO()
    start = time.perf_counter()
    try:
        packager.build(package, tag=tag, no_cache=no_cache, log=log)
    except packager.PackagerError:
        sys.stderr.write(log.getvalue()[-3000:])
        raise
    took = time.perf_counter() - start
    images.ids.add(docker("image", "inspect", "--format", "{{.Id}}", tag).strip())
    return took


def edit_model(package: Path) -> None:
    """A model.py-only change with new content each time (BuildKit's cache outlives images)."""
    with (package / "model.py").open("a", encoding="utf-8") as model:
        model.write(f"# edited {uuid.uuid4().hex}\n")


def build_rows(package: Path, images: Images, rebuilds: int) -> list[Row]:
    tag = images.tag("numpy")
    cold = timed_build(package, tag, images, no_cache=True)
    times = []
    for _ in range(rebuilds):
        edit_model(package)
        times.append(timed_build(package, tag, images))
    warm = median(times)
    runs = "/".join(f"{t:.1f}" for t in times)
    return [
        Row("cold build, hooks + numpy (--no-cache)", "s", cold, None, "-", None,
            "every step runs; pip's download cache (a BuildKit cache mount) is kept"),
        Row("rebuild after a model.py-only edit vs cold", "s", warm, cold, "≤ 5% of cold",
            warm <= 0.05 * cold, f"median of {rebuilds}: {runs} s"),
    ]  # fmt: skip


def size(tag: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag))


def layer_sizes(tag: str) -> list[tuple[int, str]]:
    """(bytes, created by) of each history entry, newest first."""
    out = docker("history", "--human=false", "--no-trunc", "--format", "{{.Size}}\t{{.CreatedBy}}", tag)
    return [(int(s), by) for s, by in (line.split("\t", 1) for line in out.splitlines())]


def runtime_row(hooks_tag: str, images: Images, tmp: Path) -> Row:
    """What the packager runtime adds: the hooks image minus the same files built without packager."""
    context = tmp / "plain"
    context.mkdir()
    (context / "Dockerfile").write_text(PLAIN_DOCKERFILE, encoding="utf-8")
    for name in ("model.py", "package.yaml"):
        shutil.copy(HOOKS / name, context / name)
    plain = images.tag("plain")
    docker("build", "--quiet", "--tag", plain, str(context))
    added = (size(hooks_tag) - size(plain)) / MB
    parts = {"pip install": 0.0, "COPY runtime/": 0.0}
    for nbytes, created_by in layer_sizes(hooks_tag):
        for key in parts:
            parts[key] += nbytes / MB if key in created_by else 0.0
    return Row(
        "what the packager runtime adds (hooks image vs no-packager image)", "MB", added,
        size(plain) / MB - size(BASE) / MB, "≤ 30 MB", added <= 30,
        f"runtime requirements {parts['pip install']:.1f} MB + runtime code {parts['COPY runtime/']:.1f} MB; "
        f"baseline column: what the no-packager image adds over the base; "
        f"Truss's in-image server requirements: {TRUSS_RUNTIME_MB} MB (reference, not measured)",
    )  # fmt: skip


def installed_row(tag: str) -> Row:
    """Image size over the base against the bytes its added directories hold (du inside)."""
    out = docker("run", "--rm", "--entrypoint", "du", tag, "-s", "--bytes", "--total", *INSTALLED)
    per = {line.split("\t")[1]: int(line.split("\t")[0]) for line in out.splitlines()}
    installed = per.pop("total") / MB
    over = (size(tag) - size(BASE)) / MB
    detail = ", ".join(f"{path} {n / MB:.1f}" for path, n in per.items())
    return Row(
        "image over base vs installed files (hooks + numpy)", "MB", over, installed, "≤ 1.1x",
        over <= 1.1 * installed, f"du --bytes MB: {detail}; no pip/apt caches, no duplicated layers",
    )  # fmt: skip


def ready(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", f"/v1/models/{NAME}")
        return connection.getresponse().status == 200
    except OSError:
        return False  # not listening yet, or docker-proxy closed the connection
    finally:
        connection.close()


def until_ready(port: int, start: float, timeout: float = 120) -> float:
    while not ready(port):
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"not ready on port {port} after {timeout} s")
        time.sleep(0.01)
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def container_start(tag: str) -> float:
    port = free_port()
    start = time.perf_counter()
    box = docker("run", "--detach", "--publish", f"127.0.0.1:{port}:8080", tag).strip()
    try:
        return until_ready(port, start)
    finally:
        docker("rm", "--force", box)


def process_start(package: Path) -> float:
    port = free_port()
    start = time.perf_counter()
    command = [sys.executable, "-m", "packager._server", str(package), "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning"]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        try:
            return until_ready(port, start)
        finally:
            proc.terminate()
            proc.wait(30)


def startup_row(tag: str, package: Path, starts: int) -> Row:
    ours, base = [], []
    for i in range(starts):  # interleaved, order flipped each time
        for measure in (ours, base) if i % 2 == 0 else (base, ours):
            measure.append(container_start(tag) if measure is ours else process_start(package))
    runs = "/".join(f"{t:.2f}" for t in ours)
    return Row(
        "container start to ready (docker run → 200), hooks", "s", median(ours), median(base), "-", None,
        f"median of {starts}: {runs}; baseline: the same server as a process on the host (`pkg serve`)",
    )  # fmt: skip


@contextmanager
def workspace() -> Iterator[tuple[Path, Images]]:
    images = Images()
    with tempfile.TemporaryDirectory(prefix="packager-bench-build-") as tmp:
        try:
            yield Path(tmp), images
        finally:
            images.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="replace the table in bench/README.md")
    parser.add_argument("--rebuilds", type=int, default=3, help="rebuilds after model.py edits (median)")
    parser.add_argument("--starts", type=int, default=5, help="container starts to time (median)")
    args = parser.parse_args()
    docker("image", "inspect", BASE)  # fails early, with docker's message, without the base image
    with workspace() as (tmp, images):
        numpy_package = make_package(tmp, ["numpy"])
        rows = build_rows(numpy_package, images, args.rebuilds)
        hooks = make_package(tmp, [])
        hooks_tag = images.tag("hooks")
        timed_build(hooks, hooks_tag, images)
        rows.append(runtime_row(hooks_tag, images, tmp))
        rows.append(installed_row(images.tags[0]))
        rows.append(startup_row(hooks_tag, hooks, args.starts))
    dirty = " (uncommitted changes in the tree)" if _dirty() else ""
    footer = f"_{machine()}{dirty}; docker {docker('version', '--format', '{{.Server.Version}}').strip()}, BuildKit._"
    body = f"{table(rows)}\n\n{footer}"
    print(body)
    if args.write:
        write_section("build", body)


def _dirty() -> bool:
    done = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return bool(done.stdout.strip())


if __name__ == "__main__":
    main()
