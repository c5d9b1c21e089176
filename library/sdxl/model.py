"""Text to image with Stable Diffusion XL base 1.0 (diffusers), PNGs out as base64.

The weights are the spec's `weights` source with `dir: base` (a diffusers folder:
model_index.json, unet/, vae/, text_encoder(_2)/, tokenizer(_2)/, scheduler/); an optional
second source with `dir: adapter` holds a LoRA adapter (one .safetensors file) that is
fused into the weights at load, so a fine-tuned variant is a spec change. Point
either at another folder with PACKAGER_WEIGHTS_DIR (or packager.load(weights_dir=...)).

On an Ampere or newer GPU the model runs in bfloat16, on older GPUs in float16 (the VAE
then decodes in float32: its config's force_upcast, as SDXL's VAE overflows in float16),
on CPU in float32; SD_DTYPE overrides (float16, bfloat16, float32). Attention is PyTorch's scaled_dot_product_attention;
PACKAGER_TORCH_COMPILE=1 compiles the UNet. SDXL has no safety checker.

The pipeline (inputs, samplers, size and token checks, LoRA, PNGs) is packager.diffusion's,
shared by the catalogue's Stable Diffusion entries; this file says which pipeline and defaults.
predict_concurrency must stay 1: the schedulers are reused between requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from packager.diffusion import GenerateRequest as BaseRequest
from packager.diffusion import GenerateResponse, SchedulerName, TextToImage

PIPELINE = "StableDiffusionXLPipeline"
PIPELINE_KWARGS: dict[str, Any] = {"add_watermarker": False}  # the invisible watermark needs another package
PREFER_BF16 = True  # its VAE overflows in float16 and would decode in float32
DEFAULT_SCHEDULER = "euler"
DEFAULT_STEPS = 30
DEFAULT_GUIDANCE = 5.0


class GenerateRequest(BaseRequest):
    """One prompt; `num_images` images from seeds seed, seed+1, ..."""

    steps: int = Field(DEFAULT_STEPS, ge=1, le=150, description="Denoising steps.")
    guidance: float = Field(DEFAULT_GUIDANCE, ge=0, le=30, description="Classifier-free guidance scale.")
    scheduler: SchedulerName = Field(DEFAULT_SCHEDULER, description="Sampler.")


class Model:
    def __init__(self, device: str, weights: dict[str, Path]) -> None:
        self.sd = TextToImage(weights, device, PIPELINE, PIPELINE_KWARGS, prefer_bf16=PREFER_BF16)

    def load(self) -> None:
        self.sd.load()

    def predict(self, inputs: GenerateRequest) -> GenerateResponse:
        return self.sd.generate(inputs)
