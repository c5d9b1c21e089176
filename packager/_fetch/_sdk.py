"""Sources fetched through an optional SDK: hf:// (huggingface_hub), s3:// (boto3), gs:// (google-cloud-storage).

Each SDK is imported only when a source needs it; a missing one is a
ModelLoadError naming the pip package to add to the spec's requirements.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from packager._errors import ModelLoadError
from packager._weights import WeightSource

#: Declared secrets whose value is used as the Hugging Face token, first found wins.
HF_TOKEN_SECRETS = ("hf_token", "hf_access_token")
PIP_NAMES = {"hf": "huggingface_hub", "s3": "boto3", "gs": "google-cloud-storage"}
_MODULES = {"hf": "huggingface_hub", "s3": "boto3", "gs": "google.cloud.storage"}
_log = logging.getLogger("packager.weights")


def sdk(kind: str, source: str) -> ModuleType:
    """The SDK module for `kind`, or a ModelLoadError saying which pip package to install."""
    try:
        return importlib.import_module(_MODULES[kind])
    except ImportError:
        pip = PIP_NAMES[kind]
        raise ModelLoadError(
            f"weights {source} need the {pip} package, which is not installed; "
            f"add {pip} to requirements in package.yaml (or `pip install 'packager[{kind}]'`)"
        ) from None


def fetch_hf(source: WeightSource, dest: Path, token: str | None) -> None:
    """snapshot_download of the pinned revision into `dest`, with the source's patterns."""
    hub: Any = sdk("hf", source.source)
    repo = source.source[len("hf://") :].split("@", 1)[0]
    try:
        hub.snapshot_download(
            repo_id=repo,
            revision=source.revision,
            local_dir=str(dest),
            allow_patterns=list(source.allow_patterns) or None,
            ignore_patterns=list(source.ignore_patterns) or None,
            token=token,
        )
    except Exception as exc:  # the hub's errors: not found, gated, offline, network
        offline = "; HF_HUB_OFFLINE is set, unset it to download" if os.environ.get("HF_HUB_OFFLINE") else ""
        raise ModelLoadError(
            f"downloading {source.source} failed: {type(exc).__name__}: {_first_line(exc)}{offline}"
        ) from None


def fetch_bucket(source: WeightSource, dest: Path) -> None:
    """Every object under the s3:// or gs:// prefix, into `dest` (sub-folders kept)."""
    module: Any = sdk(source.kind, source.source)
    bucket, _, prefix = source.source.partition("://")[2].partition("/")
    try:
        keys = _list(source.kind, module, bucket, prefix)
        if not keys:
            raise ModelLoadError(f"no objects under {source.source}; check the bucket and the prefix")
        for key, download in keys:
            relative = key[len(prefix) :].lstrip("/") if prefix and key != prefix else key.rsplit("/", 1)[-1]
            if not relative or relative.endswith("/"):
                continue
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            _log.info("weights %s: downloading %s", dest.name, relative)
            download(str(target))
    except ModelLoadError:
        raise
    except Exception as exc:  # the SDK's errors: credentials, not found, network
        raise ModelLoadError(
            f"downloading {source.source} failed: {type(exc).__name__}: {_first_line(exc)}"
        ) from None


def _list(kind: str, module: Any, bucket: str, prefix: str) -> list[tuple[str, Any]]:
    """(key, download(path)) for each object under `prefix`."""
    if kind == "s3":
        client = module.client("s3")
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        return [(key, lambda path, key=key: client.download_file(bucket, key, path)) for key in keys]
    blobs = list(module.Client().list_blobs(bucket, prefix=prefix or None))
    return [(blob.name, blob.download_to_filename) for blob in blobs]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else "no details"
