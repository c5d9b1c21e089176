"""The `runtime` section of the spec: how the server runs the model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from packager._spec_base import _Strict


class Batching(_Strict):
    """Dynamic batching, used when the model defines `predict_batch`."""

    max_batch_size: int = Field(8, ge=1, le=4096, description="Most requests in one batch.")
    max_wait_ms: float = Field(
        5.0, ge=0, le=60_000, description="Longest a request waits for a batch to fill."
    )


class Runtime(_Strict):
    """How the server runs the model."""

    predict_concurrency: int = Field(
        1, ge=1, le=10_000, description="How many predict calls may run at once."
    )
    request_timeout_s: float = Field(
        300.0, gt=0, le=86_400, description="A request running longer gets HTTP 504."
    )
    max_queue: int = Field(256, ge=1, le=1_000_000, description="Requests waiting beyond this get HTTP 429.")
    shutdown_grace_s: float = Field(
        30.0, ge=0, le=3_600, description="On SIGTERM, how long in-flight requests may finish."
    )
    stuck_exit_s: float = Field(
        60.0,
        ge=0,
        le=86_400,
        description="Exit (code 3) after every predict slot is stuck this long; 0: never.",
    )
    health_timeout_s: float = Field(
        10.0, gt=0, le=3_600, description="is_healthy() taking longer makes readiness answer 503."
    )
    batching: Batching = Field(default_factory=Batching)  # type: ignore[arg-type]
    openai: list[Literal["chat", "completion"]] = Field(
        default_factory=list,
        description="OpenAI-compatible routes to serve over predict: `chat` (POST /v1/chat/completions, "
        "input `messages`) and/or `completion` (POST /v1/completions, input `prompt`); docs/openai.md.",
    )

    @field_validator("openai", mode="before")
    @classmethod
    def _one_route(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    api_key_secret: str | None = Field(
        None,
        description="A secret declared under `secrets` whose value clients must send as the API key.",
    )
