"""Chat and completion requests in OpenAI's shape, and what an LLM entry answers.

An LLM package annotates predict's input with `ChatRequest` (OpenAI-style `messages`) or
`CompletionRequest` (a `prompt`), which share the sampling fields (`Sampling`). predict
answers a `Completion` (the whole text, `finish_reason`, `usage`) or, when the request asked
for `stream: true`, yields `Chunk`s (text pieces; the last one carries `finish_reason` and
`usage`). The OpenAI-compatible routes (docs/openai.md) map onto exactly these fields.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator
from typing_extensions import TypedDict

FinishReason = Literal["stop", "length"]
MAX_STOPS = 4  # as OpenAI


class TextPart(BaseModel):
    """One part of a message's content; only text parts are understood."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["text"] = "text"
    text: str


class ChatMessage(BaseModel):
    """One message: a role and its content (a string, or a list of text parts)."""

    model_config = ConfigDict(extra="ignore")  # name, tool_call_id ... are accepted and not used

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Union[str, list[TextPart]]

    def text(self) -> str:
        """The content as one string."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class Sampling(BaseModel):
    """How to generate: the fields both request kinds share (names as in OpenAI's API)."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(256, ge=1, le=131_072, description="Most tokens to generate.")
    temperature: float = Field(1.0, ge=0, le=2, description="0: greedy (deterministic).")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling: keep this much probability mass.")
    top_k: int = Field(0, ge=0, description="Keep the k most likely tokens; 0: all.")
    repetition_penalty: float = Field(1.0, gt=0, le=10, description="Above 1 discourages repeats.")
    seed: Optional[int] = Field(None, description="The same seed gives the same sampled text.")
    stop: Union[str, list[str], None] = Field(
        None, description=f"Up to {MAX_STOPS} strings; generation stops before the first one."
    )
    stream: bool = Field(False, description="Yield the text in chunks as it is generated.")

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: Union[str, list[str], None]) -> Union[str, list[str], None]:
        items = [value] if isinstance(value, str) else (value or [])
        if len(items) > MAX_STOPS:
            raise ValueError(f"give at most {MAX_STOPS} stop sequences")
        if any(not item for item in items):
            raise ValueError("a stop sequence must not be empty")
        return value

    def stops(self) -> list[str]:
        """The stop sequences as a list."""
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


class ChatRequest(Sampling):
    """A conversation to continue with the model's own chat template."""

    messages: list[ChatMessage] = Field(min_length=1, description="OpenAI-style messages.")

    def message_dicts(self) -> list[dict[str, Any]]:
        """The messages as chat-template input: role and text content."""
        return [{"role": m.role, "content": m.text()} for m in self.messages]


class CompletionRequest(Sampling):
    """A text prompt to continue."""

    prompt: str = Field(min_length=1, description="The text to continue.")


class Usage(TypedDict):
    """Token counts, as OpenAI reports them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Completion(TypedDict):
    """The whole answer of a request that did not stream."""

    text: str
    finish_reason: FinishReason
    usage: Usage


class Chunk(TypedDict):
    """A piece of a streamed answer; the last one has `finish_reason` and `usage` set."""

    text: str
    finish_reason: Optional[FinishReason]
    usage: Optional[Usage]


SAMPLING_FIELDS = tuple(Sampling.model_fields)
