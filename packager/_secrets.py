"""Secrets declared by name in package.yaml, resolved when the model loads.

For a secret ``hf_token`` the value is looked up, in order, in:

1. the environment variable ``PACKAGER_SECRET_HF_TOKEN``;
2. the file ``hf_token`` in the secrets directory: ``$PACKAGER_SECRETS_DIR``,
   else ``/secrets`` (where Kubernetes and ``pkg run`` mount them).

Values never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from packager._errors import SecretError

DEFAULT_SECRETS_DIR = "/secrets"


def env_name(secret: str) -> str:
    """The environment variable holding `secret`."""
    return "PACKAGER_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", secret).upper()


def secrets_dir() -> Path:
    """The directory secret files are read from."""
    return Path(os.environ.get("PACKAGER_SECRETS_DIR") or DEFAULT_SECRETS_DIR)


class Secrets(Mapping[str, str]):
    """Read-only mapping of declared secret names to values; its repr shows names only."""

    def __init__(self, values: Mapping[str, str], absent: Iterable[str] = ()) -> None:
        self._values = dict(values)
        self._absent = frozenset(absent)  # optional secrets that were not given

    def __getitem__(self, name: str) -> str:
        try:
            return self._values[name]
        except KeyError:
            if name in self._absent:
                raise KeyError(
                    f"secret {name!r} was not given (it is declared for weights fetched at build, so it is "
                    f"optional when the model starts); set ${env_name(name)} or write the file "
                    f"{secrets_dir() / name}"
                ) from None
            declared = ", ".join(sorted(self._values)) or "none"
            raise KeyError(
                f"secret {name!r} is not declared in package.yaml (declared: {declared}); add it under 'secrets:'"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Secrets({sorted(self._values)!r})"

    __str__ = __repr__


def resolve_secrets(
    names: list[str], overrides: Mapping[str, str] | None = None, optional: Iterable[str] = ()
) -> Secrets:
    """Resolve every declared name; one SecretError lists all that are missing, except the
    `optional` ones (left out of the mapping, with a message saying so when read)."""
    optional = frozenset(optional)
    overrides = overrides or {}
    directory = secrets_dir()
    values: dict[str, str] = {}
    missing: list[str] = []
    for name in names:
        value = overrides.get(name)
        if value is None:
            value = os.environ.get(env_name(name))
        if value is None:
            value = _read_file(directory / name)
        if value is None or value == "":
            missing.append(name)
        else:
            values[name] = value
    absent = [name for name in missing if name in optional]
    missing = [name for name in missing if name not in optional]
    if missing:
        places = "; ".join(f"{n!r}: set ${env_name(n)} or write the file {directory / n}" for n in missing)
        raise SecretError(f"missing secret{'s' if len(missing) > 1 else ''}: {places}")
    return Secrets(values, absent)


def _read_file(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as exc:
        raise SecretError(
            f"secret file {path} cannot be read ({exc.strerror}); fix its permissions"
        ) from None
