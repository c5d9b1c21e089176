"""What every model of the spec shares: strictness, and validator errors that carry their remedy."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError


def _fail(kind: str, message: str) -> PydanticCustomError:
    """A validator error whose message is shown to users as is (it says what to write)."""
    return PydanticCustomError(kind, message)


class _Strict(BaseModel):
    """Unknown keys rejected, frozen, fields settable by name or alias."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
