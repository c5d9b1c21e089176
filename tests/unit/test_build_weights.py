"""The weights part of a build context: local sources in their own layer, `fetch: build` sources
fetched by the weights stage from fetch/ alone (run here on the host, as the stage runs it), the
labels a build adds. tests/docker/test_build_inputs.py builds such an image for real."""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tls_server import https_server, self_signed

from packager import PackagerError, read_package
from packager._build import build_context, write_context
from packager._errors import SpecError
from packager._fetch._store import read_marker

MODEL = "class Model:\n    def predict(self, inputs):\n        return inputs\n"
BODY = b"weights behind a token\n"
TOKEN = "t0ken-for-the-weights"


def make_package(parent: Path, **fields: Any) -> Path:
    root = parent / "pkg"
    root.mkdir(parents=True)
    spec = {"spec_version": 1, "name": "w", **fields}
    (root / "package.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (root / "model.py").write_text(MODEL)
    return root


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_error(401)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    key, crt = self_signed(tmp_path)
    with https_server(Handler, key, crt) as (url, _):
        yield url, crt


def run_bake(ctx: Path, tmp_path: Path, cert: Path, token: str | None) -> subprocess.CompletedProcess[str]:
    """What the weights stage runs, with only fetch/ on PYTHONPATH and the token as a secret file."""
    secrets = tmp_path / "run-secrets"
    secrets.mkdir(exist_ok=True)
    if token is not None:
        (secrets / "store-token").write_text(token)
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ctx / "fetch"),
        "PACKAGER_SECRETS_DIR": str(secrets),
        "PACKAGER_CA_BUNDLE": str(cert),
    }
    code = (
        "import sys, packager; assert packager.__file__.startswith(sys.argv[1]), packager.__file__; "
        "from packager._fetch._bake import main; sys.argv[1:] = sys.argv[2:]; sys.exit(main())"
    )
    command = [
        sys.executable,
        "-c",
        code,
        str(ctx / "fetch"),
        str(ctx / "fetch" / "weights.json"),
        str(tmp_path / "w"),
    ]
    return subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_weights_stage_fetches_with_the_token_from_fetch_alone(
    server: tuple[str, Path], tmp_path: Path
) -> None:
    url, cert = server
    digest = hashlib.sha256(BODY).hexdigest()
    root = make_package(
        tmp_path,
        secrets=["store-token"],
        weights=[
            {"source": f"{url}/m.bin", "dir": "m", "secret": "store-token", "sha256": {"m.bin": digest}}
        ],
    )
    ctx = tmp_path / "ctx"
    context = write_context(read_package(root), ctx)
    assert context.baked == (("m", "store-token"),)
    assert context.build_secrets == ("store-token",)
    assert sorted(p.name for p in (ctx / "fetch" / "packager").iterdir()) == [
        "__init__.py", "_errors.py", "_fetch", "_secrets.py", "_weights.py"
    ]  # fmt: skip
    denied = run_bake(ctx, tmp_path, cert, "wrong")
    assert denied.returncode == 1
    assert denied.stderr.splitlines()[-1].startswith("error: downloading https://127.0.0.1:")
    assert "HTTP 401" in denied.stderr
    assert "wrong" not in denied.stderr
    done = run_bake(ctx, tmp_path, cert, TOKEN)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "w" / "m" / "m.bin").read_bytes() == BODY
    assert read_marker(tmp_path / "w" / "m") == {"source": f"{url}/m.bin", "files": {"m.bin": digest}}
    assert TOKEN not in done.stderr


def test_local_weights_get_their_own_folder_and_are_verified(tmp_path: Path) -> None:
    root = make_package(
        tmp_path, weights=[{"source": "./big", "sha256": {"a.bin": hashlib.sha256(b"a").hexdigest()}}]
    )
    (root / "big").mkdir()
    (root / "big" / "a.bin").write_bytes(b"a")
    ctx = tmp_path / "ctx"
    context = write_context(read_package(root), ctx)
    assert context.local_weights == ("./big",)
    assert context.baked == ()
    assert (ctx / "weights" / "big" / "a.bin").read_bytes() == b"a"
    assert sorted(p.name for p in (ctx / "package").iterdir()) == ["model.py", "package.yaml"]
    assert not (ctx / "fetch").exists()
    (root / "big" / "a.bin").write_bytes(b"changed")
    with pytest.raises(PackagerError, match=r"sha256 mismatch for a.bin in ./big: expected ca97.*, got "):
        write_context(read_package(root), tmp_path / "ctx2")
    assert not (tmp_path / "ctx2").exists()


def test_a_weights_secret_must_be_declared_and_fit_the_scheme(tmp_path: Path) -> None:
    root = make_package(tmp_path, weights=[{"source": "https://h.example/m.bin", "secret": "tok"}])
    with pytest.raises(SpecError, match=r"secret 'tok' is not declared; add '- tok' under 'secrets:'"):
        read_package(root)
    (root / "package.yaml").write_text(
        yaml.safe_dump({"spec_version": 1, "name": "w", "secrets": ["tok"],
                        "weights": [{"source": "s3://bucket/key", "secret": "tok"}]})
    )  # fmt: skip
    with pytest.raises(SpecError, match=r"only https:// and hf:// sources take a secret"):
        read_package(root)


def test_hf_build_weights_use_the_declared_hf_token(tmp_path: Path) -> None:
    root = make_package(
        tmp_path,
        secrets=["hf_token"],
        weights=["hf://org/m@abc", {"source": "hf://org/n@abc", "fetch": "start"}],
    )
    context = build_context(read_package(root))
    assert context.baked == (("m", "hf_token"),)  # fetch: start ones are the container's business


def test_labels_name_the_accelerator_and_the_driver(tmp_path: Path) -> None:
    root = make_package(tmp_path, requirements=["torch==2.7.1"], resources={"accelerator": "H100:2"})
    labels = dict(build_context(read_package(root)).labels)
    assert (labels["dev.packager.accelerator"], labels["dev.packager.cuda.driver"]) == ("H100:2", "560.28.03")
    cpu = dict(build_context(read_package(make_package(tmp_path / "c"))).labels)
    assert "dev.packager.accelerator" not in cpu
    assert "dev.packager.cuda.driver" not in cpu
