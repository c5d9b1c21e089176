"""Fetching a spec's remote weights into the weights cache, before the model is built.

`fetch_weights` brings every remote source (hf://, https://, s3://, gs://) into
``<weights_dir>/<dir>``. `Pipeline.load_plan` runs it as the "fetch" stage before
``__init__`` (so `packager.load()`, `pkg serve` and the container fetch before
readiness); `pkg weights` runs it ahead of time for every remote source. Sources
with ``fetch: build`` are baked into the image by the build and never fetched at
start: one missing then is a warning in the log (`warn_unbaked`) and the model
sees an empty path. Local sources are used where they are, in the package.

Each folder is fetched under its lock and marked complete (see _store.py), so a
second start, or a concurrent one, downloads nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from packager._errors import ModelLoadError, PackagerError
from packager._fetch._https import download, hash_file, shown
from packager._fetch._sdk import HF_TOKEN_SECRETS, fetch_bucket, fetch_hf
from packager._fetch._store import is_complete, locked, write_marker
from packager._weights import WeightSource

if TYPE_CHECKING:  # the build's fetch stage carries _fetch without _spec (packager/_build/_bake.py)
    from packager._spec import Spec

__all__ = [
    "HF_TOKEN_SECRETS",
    "build_only_secrets",
    "fetch_one",
    "fetch_weights",
    "remote_sources",
    "source_secret",
    "token_secret",
    "warn_unbaked",
]
_log = logging.getLogger("packager.weights")


def remote_sources(spec: Spec, when: Collection[str] = ("build", "start")) -> list[WeightSource]:
    """The spec's sources that need fetching (not local), with `fetch` in `when`."""
    return [w for w in spec.weights if w.kind != "local" and w.fetch in when]


def build_only_secrets(spec: Spec) -> set[str]:
    """Declared secrets used only as tokens of `fetch: build` sources: the image has those
    weights already, so the container may start without them."""
    used = {
        when: {source_secret(spec, w) for w in remote_sources(spec, (when,))} for when in ("build", "start")
    }
    return {name for name in used["build"] - used["start"] if name is not None}


def token_secret(spec: Spec) -> str | None:
    """The declared secret used as the Hugging Face token, when the spec has hf:// sources."""
    if not any(w.kind == "hf" for w in spec.weights):
        return None
    return next((name for name in HF_TOKEN_SECRETS if name in spec.secrets), None)


def fetch_weights(
    spec: Spec,
    weights_dir: Path,
    secrets: Mapping[str, str],
    *,
    when: Collection[str] = ("build", "start"),
) -> dict[str, Path]:
    """Fetch each remote source with `fetch` in `when` not complete yet; returns {dir: folder}.

    `secrets` holds the resolved secrets (only the sources' tokens are read, `source_secret`).
    """
    fetched: dict[str, Path] = {}
    for source in remote_sources(spec, when):
        dest = weights_dir / source.dir
        if not is_complete(dest, source.source, source.sha256):
            name = source_secret(spec, source)
            fetch_one(source, dest, secrets.get(name) if name else None)
        fetched[source.dir] = dest
    return fetched


def source_secret(spec: Spec, source: WeightSource) -> str | None:
    """The declared secret whose value is `source`'s token: its own `secret`, else for hf://
    the Hugging Face token (`token_secret`)."""
    if source.secret is not None:
        return source.secret
    return token_secret(spec) if source.kind == "hf" else None


def warn_unbaked(spec: Spec, weights_dir: Path, package: str) -> list[str]:
    """Log each ``fetch: build`` source missing from `weights_dir` (they are not fetched at start)."""
    missing = []
    for source in remote_sources(spec, ("build",)):
        dest = weights_dir / source.dir
        baked = is_complete(dest, source.source, source.sha256) or (dest.is_dir() and any(dest.iterdir()))
        if not baked:
            missing.append(source.dir)
            _log.warning(
                "weights %s (fetch: build) are not in %s; run `pkg weights %s` to fetch them, "
                "or set 'fetch: start' (an image built by `pkg build` has them baked in)",
                source.dir,
                dest,
                package,
            )
    return missing


def fetch_one(source: WeightSource, dest: Path, token: str | None) -> bool:
    """Fetch `source` into `dest` under its lock; False when it was complete already."""
    try:
        with locked(dest):
            if is_complete(dest, source.source, source.sha256):
                return False  # another process fetched it while this one waited
            started = time.monotonic()
            _log.info("weights %s: fetching %s", source.dir, _shown(source))
            dest.mkdir(parents=True, exist_ok=True)
            files = _fetch(source, dest, token)
            write_marker(dest, source.source, files)
            _log.info("weights %s: ready in %s (%.1fs)", source.dir, dest, time.monotonic() - started)
            return True
    except PackagerError:
        raise
    except OSError as exc:
        where = exc.filename or dest
        raise ModelLoadError(
            f"cannot fetch weights {source.dir} into {where}: {exc.strerror or exc}; "
            "check the weights directory ($PACKAGER_WEIGHTS_DIR) is writable and has space"
        ) from None


def _fetch(source: WeightSource, dest: Path, token: str | None) -> dict[str, str]:
    if source.kind == "https":
        return download(source.source, dest, source.sha256, token)
    if source.kind == "hf":
        fetch_hf(source, dest, token)
    else:
        fetch_bucket(source, dest)
    return verify(source, dest)


def verify(source: WeightSource, dest: Path) -> dict[str, str]:
    """Check the files `source.sha256` names in `dest`; a mismatching or missing file fails."""
    files: dict[str, str] = {}
    for name, want in source.sha256.items():
        path = dest / name
        if not path.is_file():
            raise ModelLoadError(f"{source.source} has no file {name} (named under sha256 in package.yaml)")
        got = hash_file(path).hexdigest()
        if got != want:
            path.unlink()
            raise ModelLoadError(
                f"sha256 mismatch for {name} from {_shown(source)}: expected {want}, got {got}; "
                "the file was removed; fix sha256 in package.yaml or the source"
            )
        files[name] = got
    return files


def _shown(source: WeightSource) -> str:
    return shown(source.source) if source.kind == "https" else source.source
