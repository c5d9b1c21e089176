"""`CausalLM`: a Hugging Face causal LM folder (plus an optional LoRA adapter) behind one `respond`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional, Union

from packager._errors import InputError, ModelLoadError
from packager.io._chat import ChatRequest, Chunk, Completion, CompletionRequest, Sampling, Usage
from packager.llm._generate import Piece, generate

COMPILE_ENV = "PACKAGER_TORCH_COMPILE"


class CausalLM:
    """Loads `folder` on `device` (bf16 on a GPU that has it, else fp16; fp32 on CPU), SDPA attention.

    `adapter`: a folder holding a peft LoRA adapter (adapter_config.json); it is merged into the
    weights once at load, so it costs nothing per token. `compile`: torch.compile the forward
    pass (default: $PACKAGER_TORCH_COMPILE == "1").
    """

    def __init__(
        self, folder: Path, device: str, *, adapter: Optional[Path] = None, compile: Optional[bool] = None
    ) -> None:
        self.folder = Path(folder)
        self.device = device
        self.adapter = adapter
        self.compile = os.environ.get(COMPILE_ENV) == "1" if compile is None else compile
        self.model: Any = None
        self.tokenizer: Any = None
        self.context = 0
        self.eos: set[int] = set()

    def load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not (self.folder / "config.json").is_file():
            raise ModelLoadError(
                f"no model in {self.folder} (config.json is missing); fetch the weights with `pkg weights` "
                "or point PACKAGER_WEIGHTS_DIR at a folder holding them"
            )
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder, local_files_only=True)
        model: Any = AutoModelForCausalLM.from_pretrained(
            self.folder,
            dtype=_dtype(torch, self.device),
            device_map=self.device,  # safetensors are read straight onto the device
            attn_implementation="sdpa",
            local_files_only=True,
        )
        if self.adapter is not None:
            model = _with_adapter(model, self.adapter)
        model.eval()
        self.model = model
        if self.compile:
            self.model.forward = torch.compile(self.model.forward, dynamic=True)
        self.context = int(getattr(self.model.config, "max_position_embeddings", 0) or 0)
        self.eos = _eos_ids(self.model, self.tokenizer)

    def prompt_ids(self, request: Union[ChatRequest, CompletionRequest]) -> list[int]:
        """The request's prompt as token ids: messages through the chat template, or the prompt."""
        if isinstance(request, ChatRequest):
            if not getattr(self.tokenizer, "chat_template", None):
                raise InputError("messages: this model has no chat template; send a prompt instead")
            encoded = self.tokenizer.apply_chat_template(
                request.message_dicts(), add_generation_prompt=True, tokenize=True, return_dict=True
            )
            return list(encoded["input_ids"])
        return list(self.tokenizer(request.prompt)["input_ids"])

    def respond(self, request: Union[ChatRequest, CompletionRequest]) -> Union[Completion, Iterator[Chunk]]:
        """The whole `Completion`, or (when `request.stream`) an iterator of `Chunk`s.

        Inputs the model cannot take (a prompt past its context, max_tokens beyond what is left)
        raise InputError here, before anything streams.
        """
        ids = self.prompt_ids(request)
        field = "messages" if isinstance(request, ChatRequest) else "prompt"
        self._check_room(len(ids), request, field)
        pieces = generate(self.model, self.tokenizer, ids, request, self.eos)
        if request.stream:
            return _chunks(pieces, len(ids))
        text: list[str] = []
        for piece in pieces:
            text.append(piece.text)
        assert piece.finish_reason is not None
        return {"text": "".join(text), "finish_reason": piece.finish_reason, "usage": _usage(len(ids), piece)}

    def _check_room(self, prompt_tokens: int, params: Sampling, field: str) -> None:
        if not self.context:
            return
        if prompt_tokens >= self.context:
            raise InputError(
                f"{field}: the prompt is {prompt_tokens} tokens; this model reads at most {self.context}",
                [{"loc": [field], "msg": "too many tokens", "type": "value_error"}],
            )
        room = self.context - prompt_tokens
        if params.max_tokens > room:
            raise InputError(
                f"max_tokens: the prompt is {prompt_tokens} tokens of the model's {self.context}, "
                f"so at most {room} can be generated; lower max_tokens",
                [{"loc": ["max_tokens"], "msg": f"at most {room}", "type": "value_error"}],
            )


def _chunks(pieces: Iterator[Piece], prompt_tokens: int) -> Iterator[Chunk]:
    try:
        for piece in pieces:
            usage = _usage(prompt_tokens, piece) if piece.finish_reason else None
            yield {"text": piece.text, "finish_reason": piece.finish_reason, "usage": usage}
    finally:
        pieces.close()  # type: ignore[attr-defined]


def _usage(prompt_tokens: int, piece: Piece) -> Usage:
    done = piece.completion_tokens
    return {"prompt_tokens": prompt_tokens, "completion_tokens": done, "total_tokens": prompt_tokens + done}


def _dtype(torch: Any, device: str) -> Any:
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float16 if device == "mps" else torch.float32


def _with_adapter(model: Any, adapter: Path) -> Any:
    if not (adapter / "adapter_config.json").is_file():
        raise ModelLoadError(
            f"the adapter folder {adapter} has no adapter_config.json; give a peft LoRA adapter "
            "(save_pretrained of a PeftModel) or remove the `adapter` weight source"
        )
    from peft import PeftModel

    return PeftModel.from_pretrained(model, adapter).merge_and_unload()


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    found: set[int] = set()
    for value in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            found.add(value)
        elif value:
            found.update(int(v) for v in value)
    return found
