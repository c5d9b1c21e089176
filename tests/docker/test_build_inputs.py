"""What goes into an image (marker `docker`): `fetch: build` weights fetched with a token through a
BuildKit secret mount and a CA bundle, and a torch package built offline from a wheelhouse.

Needs an engine and the base image packager-base:bookworm (`scripts/docker-setup`); without them
these tests fail under CI (CI=true) and skip elsewhere. Two images are built and removed after.
The torch wheelhouse is cached in ~/.cache/packager-tests (filled once with `pip download`).
"""

from __future__ import annotations

import http.server
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from docker_helpers import BASE, docker, engine_or_skip, unique_tag
from tls_server import https_server, self_signed

import packager

pytestmark = pytest.mark.docker
TOKEN = "tok-4f1d9c2e7a-never-in-the-image"
WEIGHTS = b"baked weights, fetched with a token\n"
MODEL = """\
from pathlib import Path
from typing import ClassVar


class Model:
    def __init__(self, weights):
        self.remote = (weights["tiny"] / "model.bin").read_text()
        self.local = (weights["local"] / "notes.txt").read_text()

    def predict(self, inputs):
        return {"remote": self.remote, "local": self.local}
"""
# Loads the package in the image, as the server does, with the image's runtime and environment.
LOAD = "import json, packager; print(json.dumps(packager.load('/app/package').predict({json})))"


class TokenHandler(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_error(401)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(WEIGHTS)))
        self.end_headers()
        self.wfile.write(WEIGHTS)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An https server on 127.0.0.1 that wants the token; yields its URL and its certificate."""
    key, crt = self_signed(tmp_path)
    with https_server(TokenHandler, key, crt) as (url, _):
        yield url, crt


def in_image(image: str, *command: str, env: tuple[str, ...] = ()) -> str:
    """Run `command` in the image with the network off (`--network none`); its stdout."""
    flags = [arg for pair in env for arg in ("--env", pair)]
    done = docker(
        "run",
        "--rm",
        "--network",
        "none",
        *flags,
        "--entrypoint",
        command[0],
        image,
        *command[1:],
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def image_bytes_contain(image: str, needles: list[bytes], tmp_path: Path) -> list[bytes]:
    """Which of `needles` occur anywhere in `docker save` of the image (layers, config, history)."""
    tar = tmp_path / "image.tar"
    saved = docker("save", "--output", str(tar), image, timeout=300)
    assert saved.returncode == 0, saved.stderr
    found: set[bytes] = set()
    tail = b""
    with open(tar, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            window = tail + block
            found |= {n for n in needles if n in window}
            tail = window[-256:]
    tar.unlink()
    return sorted(found)


def test_fetch_build_weights_with_a_secret_are_baked_and_the_secret_is_nowhere(
    tls_server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine_or_skip()
    url, cert = tls_server
    import hashlib

    root = tmp_path / "secret-weights"
    (root / "local").mkdir(parents=True)
    (root / "local" / "notes.txt").write_text("local weights")
    (root / "model.py").write_text(MODEL)
    spec = {
        "spec_version": 1,
        "name": "secret-weights",
        "secrets": ["store-token"],
        "build": {"base_image": BASE},
        "weights": [
            {"source": f"{url}/model.bin", "dir": "tiny", "secret": "store-token",
             "sha256": {"model.bin": hashlib.sha256(WEIGHTS).hexdigest()}},
            {"source": "./local", "dir": "local"},
        ],
    }  # fmt: skip
    (root / "package.yaml").write_text(json.dumps(spec))
    # pip in the build goes through this machine's proxy: the bundle is the host's CAs plus the test's
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(Path("/etc/ssl/certs/ca-certificates.crt").read_bytes() + cert.read_bytes())
    monkeypatch.setenv("PACKAGER_SECRET_STORE_TOKEN", TOKEN)
    tag, log = unique_tag(), io.StringIO()
    try:
        # --network host: the build's RUN steps reach the test's server on the host's loopback
        packager.build(root, tag=tag, log=log, network="host", ca_bundle=bundle)
        assert TokenHandler.seen[-1] == f"Bearer {TOKEN}"  # the secret mount really carried it
        assert TOKEN not in log.getvalue()
        history = docker("history", "--no-trunc", tag)
        inspect = docker("image", "inspect", tag)
        assert history.returncode == inspect.returncode == 0
        assert TOKEN not in history.stdout + inspect.stdout
        labels = json.loads(inspect.stdout)[0]["Config"]["Labels"]
        assert labels["dev.packager.schema.input"] == "{}"  # an unannotated model: any JSON
        pem = b"".join(cert.read_bytes().splitlines()[1:3])  # the test CA stays out of the image
        assert image_bytes_contain(tag, [TOKEN.encode(), pem[:60]], tmp_path) == []
        # the container: not root; with the network off it finds both weights and fetches nothing
        assert in_image(tag, "id", "-u").strip() not in ("", "0")
        # a secret used only by `fetch: build` sources is optional at start: none is given here
        out = in_image(tag, "python", "-c", LOAD.format(json="{}"))
        assert json.loads(out.splitlines()[-1]) == {"remote": WEIGHTS.decode(), "local": "local weights"}
    finally:
        docker("image", "rm", "--force", tag)


WHEELHOUSE = Path.home() / ".cache" / "packager-tests" / "wheelhouse-torch-2.13.0-cp311"
TORCH_MODEL = """\
import torch


class Model:
    def predict(self, inputs):
        return {"sum": float(torch.tensor(inputs["x"], dtype=torch.float32).sum()), "torch": torch.__version__}
"""


def fill_wheelhouse(requirements: Path) -> Path:
    """torch 2.13.0 (the CPU wheel on this machine's disk) and every wheel the image needs, for
    CPython 3.11 on linux x86_64: `pip download` once, then reused from the cache."""
    done = WHEELHOUSE / ".complete"
    if done.exists():
        return WHEELHOUSE
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--dest", str(WHEELHOUSE), "--only-binary=:all:",
           "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
           "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64",
           "--platform", "linux_x86_64", "-r", str(requirements)]  # fmt: skip
    result = subprocess.run(pip, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    done.touch()
    return WHEELHOUSE


def test_torch_from_a_wheelhouse_builds_with_the_network_off(tmp_path: Path) -> None:
    engine_or_skip()
    root = tmp_path / "torch-offline"
    root.mkdir()
    (root / "model.py").write_text(TORCH_MODEL)
    spec = {
        "spec_version": 1,
        "name": "torch-offline",
        "requirements": ["torch==2.13.0"],
        "build": {"base_image": BASE},
    }
    (root / "package.yaml").write_text(json.dumps(spec))
    context = tmp_path / "ctx"
    from packager._build import write_context

    write_context(packager.read_package(root), context)  # its requirements.txt: the runtime's and torch
    wheelhouse = fill_wheelhouse(context / "requirements.txt")
    tag, log = unique_tag(), io.StringIO()
    try:
        packager.build(root, tag=tag, log=log, wheelhouse=wheelhouse, network="none")
        assert "--no-index --find-links /tmp/packager/wheelhouse" in log.getvalue()
        out = in_image(tag, "python", "-c", LOAD.format(json="{'x': [1, 2, 3.5]}"))
        assert json.loads(out.splitlines()[-1]) == {"sum": 6.5, "torch": "2.13.0+cpu"}
    finally:
        docker("image", "rm", "--force", tag)
