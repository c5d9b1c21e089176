"""Text completion with LLaMA 7B (Llama 2 7B, the base model): a prompt in, its continuation out.

Generation (sampling, stop sequences, max_tokens, token streaming, context checks) is
packager.llm's, shared by the catalogue's LLM entries; this file only says which weights
and which input shape. Weights: `weights["llama"]` (an HF folder: config.json, safetensors,
tokenizer); an optional second source with `dir: adapter` (a peft LoRA folder, such as an
Alpaca fine-tune) is merged in at load. Set PACKAGER_WEIGHTS_DIR (or
packager.load(..., weights_dir=...)) to use weights from another folder with no code change.
"""

from __future__ import annotations

from packager.io import CompletionRequest
from packager.llm import CausalLM


class Model:
    def __init__(self, weights, device) -> None:
        self.llm = CausalLM(weights["llama"], device, adapter=weights.get("adapter"))

    def load(self) -> None:
        self.llm.load()

    def predict(self, inputs: CompletionRequest):
        """A Completion (text, finish_reason, usage); with `stream: true`, Chunks as they come."""
        return self.llm.respond(inputs)
