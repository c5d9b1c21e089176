"""Truss's external_data, model_cache (and its old name hf_cache) and weights as weight sources."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from packager._errors import _MISSING
from packager._interop.truss import _values as v

Report = Callable[[str, Any, str], None]
_SCHEMES = {"hf": "hf", "gcs": "gs", "s3": "s3"}


def weight_items(config: dict[str, Any], report: Report) -> list[dict[str, Any]]:
    """The spec's weights list for `config`; problems go to `report(path, value, message)`."""
    items = _external_data(config.get("external_data") or [], report)
    cache_key = "model_cache" if config.get("model_cache") or "hf_cache" not in config else "hf_cache"
    cache = config.get(cache_key) or []
    bdn = config.get("weights") or []
    if cache and bdn:
        report("weights", _MISSING, f"use either {cache_key} or weights, not both (Truss rejects both)")
    secrets = set(config.get("secrets") or {})
    items += _model_cache(cache, cache_key, secrets, report)
    items += _bdn(bdn, report)
    return items


def _mappings(value: Any, key: str, report: Report) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        report(key, value, "expected a list of mappings")
        return []
    return value


def _external_data(value: Any, report: Report) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_mappings(value, "external_data", report)):
        url, path = item.get("url"), item.get("local_data_path")
        if not url or not path:
            report(f"external_data[{i}]", _MISSING, "each item needs url and local_data_path")
            continue
        out.append({"source": str(url), "dir": v.folder_name(str(path)), "fetch": "build"})
    return out


def _model_cache(value: Any, key: str, secrets: set[str], report: Report) -> list[dict[str, Any]]:
    items = _mappings(value, key, report)
    volumes = {item.get("use_volume") for item in items}
    if len(volumes) > 1:
        report(key, _MISSING, "all items must share the same use_volume (Truss's rule)")
    out = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        repo, kind = item.get("repo_id"), item.get("kind", "hf")
        if not isinstance(item.get("use_volume"), bool):
            report(
                f"{where}.use_volume",
                _MISSING,
                "required: false bakes the repo at build, true fetches it at start",
            )
        if not isinstance(repo, str) or not repo:
            report(f"{where}.repo_id", repo, "give the repository, e.g. 'openai/clip-vit-base-patch32'")
            continue
        if kind not in _SCHEMES:
            report(
                f"{where}.kind",
                kind,
                "packager fetches hf, gcs and s3 repositories; mirror it to one of those",
            )
            continue
        revision = item.get("revision") or None
        if item.get("use_volume") is True and kind == "hf" and not (revision and item.get("volume_folder")):
            report(
                where, _MISSING, "use_volume: true needs a pinned revision and a volume_folder (Truss's rule)"
            )
        source = v.hf_source(repo, revision) if kind == "hf" else f"{_SCHEMES[kind]}://{repo}"
        secret = item.get("runtime_secret_name", "hf_access_token")
        out.append(
            {
                "source": source,
                "dir": v.folder_name(str(item.get("volume_folder") or repo)),
                "fetch": "start" if item.get("use_volume") else "build",
                "allow_patterns": list(item.get("allow_patterns") or []),
                "ignore_patterns": list(item.get("ignore_patterns") or []),
                **({"secret": secret} if kind == "hf" and secret in secrets else {}),
            }
        )
    return out


def _bdn(value: Any, report: Report) -> list[dict[str, Any]]:
    out, mounts = [], set()
    for i, item in enumerate(_mappings(value, "weights", report)):
        source, mount = item.get("source"), item.get("mount_location")
        problem = v.weight_source(source)
        if problem:
            report(f"weights[{i}].source", source, problem)
            continue
        if not isinstance(mount, str) or not mount.startswith("/"):
            report(
                f"weights[{i}].mount_location", mount, "must be an absolute path, e.g. /app/model_cache/llama"
            )
            continue
        if mount in mounts:
            report(f"weights[{i}].mount_location", mount, "mount locations must be unique (Truss's rule)")
        mounts.add(mount)
        entry: dict[str, Any] = {"source": str(source), "dir": v.folder_name(mount), "fetch": "start"}
        entry["allow_patterns"] = list(item.get("allow_patterns") or [])
        entry["ignore_patterns"] = list(item.get("ignore_patterns") or [])
        if item.get("auth_secret_name"):
            entry["secret"] = str(item["auth_secret_name"])
        out.append(entry)
    return out
