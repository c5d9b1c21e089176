"""What a Truss model class gets that packager's contract does not give: Truss's __init__ values."""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel

from packager._contract import Contract

INIT_NAMES = ("lazy_data_resolver", "environment")


class TrussSecrets(Mapping[str, str]):
    """Truss's secrets: packager's ($PACKAGER_SECRET_X, /secrets/x), then $TRUSS_SECRET_x, then
    the default in config.yaml. Read lazily, like Truss: a missing one fails only when read."""

    def __init__(self, resolved: Mapping[str, str], defaults: Mapping[str, Optional[str]]) -> None:
        self._resolved = resolved
        self._defaults = dict(defaults)

    def __getitem__(self, name: str) -> str:
        if name not in self._defaults:
            declared = ", ".join(sorted(self._defaults)) or "none"
            raise KeyError(
                f"secret {name!r} is not declared in config.yaml (declared: {declared}); add it under secrets:"
            )
        try:
            return self._resolved[name]
        except KeyError:
            pass
        value = os.environ.get(f"TRUSS_SECRET_{name}") or self._defaults[name]
        if not value:
            env = "PACKAGER_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
            raise KeyError(f"secret {name!r} has no value; set ${env} or write the file /secrets/{name}")
        return str(value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._defaults)

    def __len__(self) -> int:
        return len(self._defaults)

    def __repr__(self) -> str:
        return f"TrussSecrets({sorted(self._defaults)!r})"


class LazyDataResolver:
    """Truss's lazy_data_resolver: packager fetches weights before __init__, so nothing is pending."""

    def __init__(self, weights: Mapping[str, Path]) -> None:
        self.weights = dict(weights)

    def block_until_download_complete(self, *args: Any, **kwargs: Any) -> str:
        return ""


class TrussOrigin:
    """A package read from a Truss directory (`packager.load`, `pkg serve`, the image)."""

    kind = "truss"
    aliases: tuple[str, ...] = ("model",)  # Truss clients call /v1/models/model
    init_names: tuple[str, ...] = INIT_NAMES

    def __init__(self, root: Path, config: dict[str, Any], paths: list[Path]) -> None:
        self.root = root
        self.config = config
        defaults = config.get("secrets") or {}
        self.secret_defaults = {str(k): (None if val is None else str(val)) for k, val in defaults.items()}
        self.optional_secrets = frozenset(self.secret_defaults)
        self.data_dir = root / str(config.get("data_dir") or "data")
        self.paths = paths  # bundled_packages_dir, external_package_dirs, the model folder

    def import_paths(self) -> None:
        """Put the folders Truss puts on sys.path there (its model folder, packages/, external dirs)."""
        for path in self.paths:
            text = str(path)
            if path.is_dir() and text not in sys.path:
                sys.path.append(text)

    def adapt_contract(self, contract: Contract) -> Contract:
        """Truss validates inputs and outputs only when they are annotated with a pydantic model."""
        return dataclasses.replace(
            contract,
            input_adapter=contract.input_adapter if _is_model(contract.input_type) else None,
            output_adapter=contract.output_adapter if _is_model(contract.output_type) else None,
            predict_output_adapter=(
                contract.predict_output_adapter if _is_model(contract.predict_output_type) else None
            ),
        )

    def init_values(self, available: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "config": self.config,
            "data_dir": self.data_dir,
            "secrets": TrussSecrets(available["secrets"], self.secret_defaults),
            "lazy_data_resolver": LazyDataResolver(available.get("weights") or {}),
            "environment": None,
        }


def _is_model(hint: Any) -> bool:
    return inspect.isclass(hint) and issubclass(hint, BaseModel)
