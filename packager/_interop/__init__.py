"""Packages written for other tools, read as packager packages (Truss: `packager._interop.truss`).

A package read from another format carries an `Origin` (`Package.origin`): what its model
class expects beyond packager's own contract (other `__init__` keyword values, other model
names the server answers to). Runtime side: the image reads these formats too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from packager._contract import Contract


class Origin(Protocol):
    """How to run a package that came from another tool's format."""

    kind: str
    aliases: tuple[str, ...]  # further model names served at /v1/models/NAME
    init_names: tuple[str, ...]  # __init__ keyword names beyond packager's own
    optional_secrets: frozenset[str]  # declared secrets that may be absent at load

    def adapt_contract(self, contract: Contract) -> Contract:
        """The contract as this format applies it (Truss: only pydantic models are checked)."""
        ...

    def init_values(self, available: Mapping[str, Any]) -> dict[str, Any]:
        """The values for __init__ keywords, given packager's own (`available`)."""
        ...
