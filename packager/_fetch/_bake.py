"""Fetch a build's ``fetch: build`` weights into the image: ``python -m packager._fetch._bake MANIFEST DIR``.

The image build runs this in its own stage (templates/Dockerfile.jinja), with only the
modules fetching needs on ``PYTHONPATH`` (see packager/_build/_bake.py), so that editing the
model or upgrading packager without touching them does not fetch the weights again.
MANIFEST is JSON written by the build: ``{"sources": [{"source": {...}, "secret": NAME}]}``.
Each source lands in ``DIR/<dir>`` with its completion marker, exactly as a start would
fetch it, so the serving runtime finds it complete and fetches nothing. A token is read
with the runtime's own lookup (`resolve_secrets`): the build mounts it as a BuildKit
secret under ``$PACKAGER_SECRETS_DIR`` (/run/secrets), so its value never reaches a layer.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from packager._errors import PackagerError
from packager._fetch import fetch_one
from packager._secrets import resolve_secrets
from packager._weights import WeightSource


def bake(manifest: Path, weights_dir: Path) -> list[str]:
    """Fetch every source of `manifest` into `weights_dir`; returns their folder names."""
    data = json.loads(manifest.read_text(encoding="utf-8"))
    done: list[str] = []
    for item in data["sources"]:
        source = WeightSource(**item["source"])
        name = item.get("secret")
        token = resolve_secrets([name])[name] if name else None
        fetch_one(source, weights_dir / source.dir, token)
        done.append(source.dir)
    return done


def main(argv: list[str] | None = None) -> int:
    """The build step: fetch, log progress to stderr, one `error:` line and exit 1 on failure."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="packager: %(message)s", stream=sys.stderr)
    try:
        bake(Path(args[0]), Path(args[1]))
    except PackagerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
