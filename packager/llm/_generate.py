"""The token loop: sampling, stop sequences, max_tokens, and text handed out as it is safe to.

One step per token, written out rather than `model.generate()`, so that a stream is a plain
generator: each `next()` runs one forward pass, and closing the generator (a client that
went away) stops generation at once. Sampling uses a `torch.Generator` of the request's own,
so a seed gives the same text whatever else runs in the process.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Optional

from packager.io._chat import FinishReason, Sampling


@dataclass
class Piece:
    """Text to hand out; on the last piece, `finish_reason` is set."""

    text: str
    finish_reason: Optional[FinishReason]
    completion_tokens: int


def generate(
    model: Any, tokenizer: Any, prompt_ids: list[int], params: Sampling, eos: set[int]
) -> Iterator[Piece]:
    """Generate from `prompt_ids`, yielding text pieces; the last piece has a finish reason."""
    import torch

    device = model.device
    generator = torch.Generator(device=device)
    generator.manual_seed(params.seed if params.seed is not None else random.getrandbits(63))
    warp = _processors(params)
    stops = params.stops()
    ids = torch.tensor([prompt_ids], device=device)
    new: list[int] = []
    cache: Any = None
    cache_arg = _cache_keyword(model)
    sent = 0
    step_input = ids
    while True:
        with torch.inference_mode():
            out = model(input_ids=step_input, use_cache=True, **{cache_arg: cache})
            cache = getattr(out, cache_arg, None) or out.past_key_values
            scores = out.logits[:, -1, :].float()
            for process in warp:
                scores = process(ids, scores)
            token = _pick(torch, scores, params.temperature, generator)
            ids = torch.cat([ids, token], dim=1)
        step_input = token
        token_id = int(token.item())
        finish: Optional[FinishReason] = None
        if token_id in eos:
            finish = "stop"
        else:
            new.append(token_id)
            if len(new) >= params.max_tokens:
                finish = "length"
        text = tokenizer.decode(new, skip_special_tokens=True)
        cut = _first_stop(text, stops)
        if cut is not None:
            text, finish = text[:cut], "stop"
        end = len(text) if finish else _safe_end(text, stops)
        if end > sent or finish:
            yield Piece(text[sent:end], finish, len(new))
            sent = end
        if finish:
            return


def _cache_keyword(model: Any) -> str:
    """`cache` (newer transformers 5.x) or `past_key_values` (older), as forward names it."""
    forward = getattr(model, "forward", model)
    try:
        names = inspect.signature(forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in names else "past_key_values"


def _processors(params: Sampling) -> list[Any]:
    from transformers import (
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    warp: list[Any] = []
    if params.repetition_penalty != 1.0:
        warp.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty))
    if params.temperature > 0:
        if params.temperature != 1.0:
            warp.append(TemperatureLogitsWarper(params.temperature))
        if params.top_k > 0:
            warp.append(TopKLogitsWarper(params.top_k))
        if params.top_p < 1.0:
            warp.append(TopPLogitsWarper(params.top_p))
    return warp


def _pick(torch: Any, scores: Any, temperature: float, generator: Any) -> Any:
    """The next token, shape (1, 1): greedy at temperature 0, else sampled with `generator`."""
    if temperature == 0:
        return scores.argmax(dim=-1, keepdim=True)
    probs = torch.softmax(scores, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)


def _first_stop(text: str, stops: list[str]) -> Optional[int]:
    """Where the earliest stop sequence begins in `text`, or None."""
    found = [at for at in (text.find(stop) for stop in stops) if at >= 0]
    return min(found) if found else None


def _safe_end(text: str, stops: list[str]) -> int:
    """How much of `text` can be handed out: not a half-decoded character, nor what may begin a stop."""
    end = len(text)
    while end and text[end - 1] == "\ufffd":  # the rest of a multi-byte character is still to come
        end -= 1
    for stop in stops:
        for size in range(min(len(stop) - 1, end), 0, -1):
            if text.endswith(stop[:size], 0, end):
                return end - size
    return end
