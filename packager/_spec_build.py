"""The spec's `build` section: what the image build takes from package.yaml."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from packager._spec_base import _fail, _Strict


class Build(_Strict):
    """Image build settings."""

    base_image: str | None = Field(None, description="Replace the base image chosen for you.")
    cuda_version: str | None = Field(None, description="Force a CUDA version, e.g. '12.4'.")
    extra_index_urls: list[str] = Field(default_factory=list, description="Extra pip index URLs.")
    find_links: list[str] = Field(default_factory=list, description="Extra pip --find-links.")
    wheelhouse: str | None = Field(None, description="Local folder of wheels for offline builds.")
    commands: list[str] = Field(default_factory=list, description="Shell commands run at build.")

    @field_validator("cuda_version")
    @classmethod
    def _cuda(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^1[0-9]\.[0-9]+$", value):
            raise _fail("cuda_version", "expected a CUDA major.minor version such as '12.4'")
        return value
