"""Loading a diffusers pipeline: the dtype, the pipeline itself, a fused LoRA adapter."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional


def pick_dtype(torch: Any, device: str, prefer_bf16: bool) -> Any:
    """float32 on CPU; on a GPU bfloat16 where `prefer_bf16` and the GPU has it, else float16.

    SD_DTYPE (float16, bfloat16, float32) overrides.
    """
    name = os.environ.get("SD_DTYPE", "")
    if not name and device == "cpu":
        name = "float32"
    elif not name and prefer_bf16 and device.startswith("cuda"):
        ampere = torch.cuda.get_device_capability(device) >= (8, 0)  # L4, A10G, A100, H100; not T4
        name = "bfloat16" if ampere else "float16"
    name = name or "float16"
    if name not in ("float16", "bfloat16", "float32"):
        raise ValueError(f"SD_DTYPE={name!r}: use float16, bfloat16 or float32")
    return getattr(torch, name)


def load_pipeline(
    base: Optional[Path], device: str, dtype: Any, pipeline: str, kwargs: dict[str, Any]
) -> Any:
    """The pipeline from `base`, its safetensors loaded straight onto `device` (no CPU copy)."""
    if base is None or not (base / "model_index.json").is_file():
        raise FileNotFoundError(
            f"no diffusers pipeline (model_index.json) in the weights folder {base}; run `pkg weights` "
            "on this package, or point PACKAGER_WEIGHTS_DIR at a folder holding base/"
        )
    import diffusers
    from diffusers.models.attention_processor import AttnProcessor2_0

    variant = "fp16" if any(base.glob("*/*.fp16.safetensors")) else None
    on_device_map = device in ("cpu", "cuda")  # diffusers places whole pipelines on these at load
    with _quiet(diffusers):
        pipe = getattr(diffusers, pipeline).from_pretrained(
            str(base),
            torch_dtype=dtype,
            variant=variant,
            use_safetensors=True,
            local_files_only=True,
            device_map=device if on_device_map else None,
            **kwargs,
        )
    if not on_device_map:
        pipe.to(device)
    for part in (pipe.unet, pipe.vae):
        # PyTorch SDPA (flash / memory-efficient kernels)
        part.set_attn_processor(AttnProcessor2_0())  # type: ignore[no-untyped-call]
    pipe.vae.enable_slicing()  # decode one image at a time: bounded memory for num_images > 1
    pipe.set_progress_bar_config(disable=True)
    return pipe


def fuse_lora(pipe: Any, folder: Path, scale: float) -> None:
    """Load the LoRA adapter in `folder` and merge it into the weights (no cost per step)."""
    files = sorted(folder.glob("*.safetensors"))
    if len(files) != 1:
        raise FileNotFoundError(
            f"the adapter weights folder {folder} must hold one .safetensors file, not {len(files)}"
        )
    pipe.load_lora_weights(str(folder), weight_name=files[0].name, adapter_name="lora")
    pipe.fuse_lora(lora_scale=scale)
    pipe.unload_lora_weights()  # the fused weights stay; the adapter layers go


@contextlib.contextmanager
def _quiet(diffusers: Any) -> Iterator[None]:
    """No per-component progress bars in server logs while loading."""
    from transformers.utils import logging

    hf_logging: Any = logging  # untyped functions

    bars = diffusers.utils.logging.is_progress_bar_enabled(), hf_logging.is_progress_bar_enabled()
    diffusers.utils.logging.disable_progress_bar()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars[0]:
            diffusers.utils.logging.enable_progress_bar()
        if bars[1]:
            hf_logging.enable_progress_bar()
