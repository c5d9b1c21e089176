"""Weight sources declared under `weights:` in package.yaml.

A source is written either as a bare string or as a mapping::

    weights:
      - hf://sentence-transformers/all-MiniLM-L6-v2@c9745ed1   # shorthand
      - source: https://example.com/model.safetensors
        dir: minilm
        sha256: {model.safetensors: 5f1c...}
        fetch: start

This module parses and validates them and resolves local paths. Fetching
remote sources comes with the image build (`fetch: build` bakes them into the
image, `fetch: start` downloads them when the container starts).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

SCHEMES = ("hf", "https", "s3", "gs")
_HF = re.compile(r"^hf://(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(@(?P<rev>[\w./-]+))?$")
_BUCKET = re.compile(r"^(s3|gs)://[a-z0-9][a-z0-9._-]{1,62}(/.*)?$")
_DIR = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FORMS = (
    "write hf://ORG/REPO@REVISION, https://HOST/PATH, s3://BUCKET/KEY, gs://BUCKET/KEY "
    "or a path inside the package such as ./weights"
)


def parse_weight_source(item: Any) -> Any:
    """Accept the string shorthand by turning it into a mapping."""
    return {"source": item} if isinstance(item, str) else item


def source_kind(source: str) -> str:
    """'hf', 'https', 's3', 'gs' or 'local' for a source string already validated."""
    scheme, sep, _ = source.partition("://")
    return scheme if sep else "local"


class WeightSource(BaseModel):
    """One place weights come from and where they land under the weights directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(description=_FORMS)
    dir: str = Field("", description="Folder under the weights directory (default: from source).")
    allow_patterns: list[str] = Field(default_factory=list, description="Glob patterns to keep.")
    ignore_patterns: list[str] = Field(default_factory=list, description="Glob patterns to skip.")
    sha256: dict[str, str] = Field(default_factory=dict, description="file name -> sha256 hex.")
    fetch: Literal["build", "start"] = Field(
        "build", description="'build' bakes weights into the image; 'start' downloads at startup."
    )
    secret: str | None = Field(
        None,
        description="A declared secret sent as the token: `Authorization: Bearer` for https://, "
        "the Hugging Face token for hf:// (default: the secret hf_token or hf_access_token).",
    )

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        scheme, sep, _ = value.partition("://")
        if not sep:
            if value.startswith("/") or ".." in Path(value).parts or not value.strip():
                raise PydanticCustomError(
                    "weights_local", "a local source must be a path inside the package, e.g. ./weights"
                )
            return value
        ok = {
            "hf": lambda v: bool(_HF.match(v)),
            "https": lambda v: len(v) > len("https://"),
            "s3": lambda v: bool(_BUCKET.match(v)),
            "gs": lambda v: bool(_BUCKET.match(v)),
        }.get(scheme)
        if ok is None:
            hint = "; use https:// (plain http is not allowed)" if scheme == "http" else ""
            raise PydanticCustomError("weights_scheme", f"unsupported scheme {scheme!r}{hint}; {_FORMS}")
        if not ok(value):
            raise PydanticCustomError("weights_source", f"malformed {scheme}:// source; {_FORMS}")
        return value

    @field_validator("dir")
    @classmethod
    def _dir(cls, value: str) -> str:
        if value and not _DIR.match(value):
            raise PydanticCustomError("weights_dir", "use a plain folder name such as 'minilm'")
        return value

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, value: dict[str, str]) -> dict[str, str]:
        for name, digest in value.items():
            if not _HEX64.match(digest):
                raise PydanticCustomError(
                    "weights_sha256", f"{name}: expected 64 lower-case hex digits (sha256sum output)"
                )
        return value

    @model_validator(mode="after")
    def _defaults(self) -> WeightSource:
        if self.kind == "local" and self.fetch == "start":
            raise PydanticCustomError(
                "weights_fetch", "local weights are copied at build time; remove 'fetch: start'"
            )
        if self.secret is not None and self.kind not in ("https", "hf"):
            raise PydanticCustomError("weights_secret", "only https:// and hf:// sources take a secret")
        if not self.dir:
            object.__setattr__(self, "dir", default_dir(self.source))
        return self

    @property
    def kind(self) -> str:
        """'hf', 'https', 's3', 'gs' or 'local'."""
        return source_kind(self.source)

    @property
    def revision(self) -> str | None:
        """The pinned revision of an hf:// source, if any."""
        match = _HF.match(self.source)
        return match.group("rev") if match else None


def default_dir(source: str) -> str:
    """The folder a source lands in when `dir` is not given: its last name, made safe."""
    body = source.partition("://")[2] or source
    body = body.split("@", 1)[0].rstrip("/")
    last = body.rsplit("/", 1)[-1] or "weights"
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", last).lstrip(".")
    return safe or "weights"
