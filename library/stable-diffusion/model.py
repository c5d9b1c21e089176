"""Text to image with Stable Diffusion (diffusers), PNGs out as base64.

The weights are the spec's `weights` source with `dir: base` (a diffusers folder:
model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/); an optional
second source with `dir: adapter` holds a LoRA adapter (one .safetensors file) that is
fused into the weights at load, so a fine-tuned variant is a spec change. Point
either at another folder with PACKAGER_WEIGHTS_DIR (or packager.load(weights_dir=...)).

On a GPU the model runs in float16 (SD_DTYPE overrides: float16, bfloat16, float32),
on CPU in float32. Attention is PyTorch's scaled_dot_product_attention;
PACKAGER_TORCH_COMPILE=1 compiles the UNet. The safety checker is not loaded.

predict_concurrency must stay 1: the schedulers are reused between requests.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from packager import InputError
from packager.io import encode_image

PIPELINE = "StableDiffusionPipeline"
PIPELINE_KWARGS: dict[str, Any] = {
    "safety_checker": None,
    "feature_extractor": None,
    "requires_safety_checker": False,
}
PREFER_BF16 = False  # float16 is as good, and T4s have no fast bfloat16
DEFAULT_SCHEDULER = "dpm++"
DEFAULT_STEPS = 25
DEFAULT_GUIDANCE = 7.5
SIZE_RANGE = (0.5, 2.0)  # width and height: this share of the model's native size, at least and at most
MAX_PIXELS = 4.0  # width * height * num_images: at most this many native-size images' worth
MAX_IMAGES = 4

# name -> (diffusers class, arguments over the model's own scheduler config)
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "dpm++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
}
SchedulerName = Literal["ddim", "euler", "euler_a", "dpm++", "pndm"]


class GenerateRequest(BaseModel):
    """One prompt; `num_images` images from seeds seed, seed+1, ..."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, description="What to draw (at most 77 CLIP tokens).")
    negative_prompt: str | None = Field(None, description="What to steer away from.")
    seed: int | None = Field(
        None, ge=0, lt=2**32, description="Random seed; omitted: a random one (returned)."
    )
    steps: int = Field(DEFAULT_STEPS, ge=1, le=150, description="Denoising steps.")
    guidance: float = Field(DEFAULT_GUIDANCE, ge=0, le=30, description="Classifier-free guidance scale.")
    width: int | None = Field(None, ge=8, le=4096, multiple_of=8, description="Pixels; default: the model's.")
    height: int | None = Field(
        None, ge=8, le=4096, multiple_of=8, description="Pixels; default: the model's."
    )
    num_images: int = Field(1, ge=1, le=MAX_IMAGES, description="Images to generate.")
    scheduler: SchedulerName = Field(DEFAULT_SCHEDULER, description="Sampler.")


class GenerateResponse(TypedDict):
    """PNG images (base64) and the seed each was drawn from."""

    images: list[str]
    seeds: list[int]
    width: int
    height: int
    scheduler: str


class Model:
    def __init__(self, device: str, weights: dict[str, Path]) -> None:
        self.device = device
        self.base = weights.get("base")
        self.lora = weights.get("adapter")
        self.pipe: Any = None
        self.native = 0
        self._schedulers: dict[str, Any] = {}
        self._scheduler_config: Any = None
        self._torch: Any = None

    def load(self) -> None:
        import torch

        self._torch = torch
        self.pipe = _load_pipeline(self.base, self.device, _dtype(torch, self.device))
        if self.lora is not None:
            _fuse_lora(self.pipe, self.lora, float(os.environ.get("LORA_SCALE", "1.0")))
        if os.environ.get("PACKAGER_TORCH_COMPILE") == "1":
            self.pipe.unet = torch.compile(self.pipe.unet)
        self.native = int(self.pipe.unet.config.sample_size) * int(self.pipe.vae_scale_factor)
        self._scheduler_config = self.pipe.scheduler.config  # the one the weights came with

    def predict(self, inputs: GenerateRequest) -> GenerateResponse:
        width, height = self._check_size(inputs)
        self._check_tokens("prompt", inputs.prompt)
        self._check_tokens("negative_prompt", inputs.negative_prompt or "")
        seed = inputs.seed if inputs.seed is not None else secrets.randbelow(2**32 - MAX_IMAGES)
        seeds = [(seed + i) % 2**32 for i in range(inputs.num_images)]
        self.pipe.scheduler = self._scheduler(inputs.scheduler)
        with self._torch.inference_mode():
            images = self.pipe(
                prompt=inputs.prompt,
                negative_prompt=inputs.negative_prompt,
                num_inference_steps=inputs.steps,
                guidance_scale=inputs.guidance,
                width=width,
                height=height,
                num_images_per_prompt=inputs.num_images,
                generator=[self._torch.Generator("cpu").manual_seed(s) for s in seeds],
                output_type="pil",
            ).images
        return {
            "images": [encode_image(image) for image in images],
            "seeds": seeds,
            "width": width,
            "height": height,
            "scheduler": inputs.scheduler,
        }

    def _check_size(self, inputs: GenerateRequest) -> tuple[int, int]:
        """Width and height within what the model was trained for; 422 naming the field if not."""
        low, high = (int(self.native * share) // 8 * 8 for share in SIZE_RANGE)
        width, height = inputs.width or self.native, inputs.height or self.native
        for field, value in (("width", width), ("height", height)):
            if not low <= value <= high:
                _reject(
                    field,
                    f"{value} is outside {low}-{high} for this model (native {self.native}); use a multiple of 8 in that range",
                )
        if width * height * inputs.num_images > MAX_PIXELS * self.native**2:
            _reject(
                "num_images",
                f"{inputs.num_images} images of {width}x{height} exceed {MAX_PIXELS:g} images of "
                f"{self.native}x{self.native} per request; ask for fewer or smaller images",
            )
        return width, height

    def _check_tokens(self, field: str, text: str) -> None:
        limit = int(self.pipe.tokenizer.model_max_length)
        count = len(self.pipe.tokenizer(text).input_ids)
        if count > limit:
            _reject(field, f"{count} tokens, more than the text encoder's {limit}; shorten it")

    def _scheduler(self, name: str) -> Any:
        if name not in self._schedulers:
            import diffusers

            cls_name, extra = SCHEDULERS[name]
            self._schedulers[name] = getattr(diffusers, cls_name).from_config(self._scheduler_config, **extra)
        return self._schedulers[name]


def _reject(field: str, message: str) -> None:
    raise InputError(
        f"input is invalid: {field}: {message}", [{"loc": [field], "msg": message, "type": "value_error"}]
    )


def _dtype(torch: Any, device: str) -> Any:
    """float32 on CPU; on a GPU bfloat16 where PREFER_BF16 and the GPU has it, else float16.

    SD_DTYPE (float16, bfloat16, float32) overrides.
    """
    name = os.environ.get("SD_DTYPE", "")
    if not name and device == "cpu":
        name = "float32"
    elif not name and PREFER_BF16 and device.startswith("cuda"):
        ampere = torch.cuda.get_device_capability(device) >= (8, 0)  # L4, A10G, A100, H100; not T4
        name = "bfloat16" if ampere else "float16"
    name = name or "float16"
    if name not in ("float16", "bfloat16", "float32"):
        raise ValueError(f"SD_DTYPE={name!r}: use float16, bfloat16 or float32")
    return getattr(torch, name)


def _load_pipeline(base: Path | None, device: str, dtype: Any) -> Any:
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
        pipe = getattr(diffusers, PIPELINE).from_pretrained(
            str(base),
            torch_dtype=dtype,
            variant=variant,
            use_safetensors=True,
            local_files_only=True,
            device_map=device if on_device_map else None,
            **PIPELINE_KWARGS,
        )
    if not on_device_map:
        pipe.to(device)
    for part in (pipe.unet, pipe.vae):
        part.set_attn_processor(AttnProcessor2_0())  # PyTorch SDPA (flash / memory-efficient kernels)
    pipe.vae.enable_slicing()  # decode one image at a time: bounded memory for num_images > 1
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _fuse_lora(pipe: Any, folder: Path, scale: float) -> None:
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
    from transformers.utils import logging as hf_logging

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
