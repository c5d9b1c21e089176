"""`packager.llm`: text generation shared by the catalogue's LLM entries (library/llama-*).

    from packager.io import ChatRequest
    from packager.llm import CausalLM

    class Model:
        def __init__(self, weights, device):
            self.llm = CausalLM(weights["llama"], device, adapter=weights.get("adapter"))

        def load(self):
            self.llm.load()

        def predict(self, inputs: ChatRequest):
            return self.llm.respond(inputs)   # a Completion, or Chunks when inputs.stream

torch, transformers and peft are imported when a model loads, not with this module.
docs/openai.md describes the request and answer shapes.
"""

from __future__ import annotations

from packager.llm._model import COMPILE_ENV, CausalLM

__all__ = ["COMPILE_ENV", "CausalLM"]
