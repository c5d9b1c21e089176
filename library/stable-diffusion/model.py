"""Text to image with Stable Diffusion (diffusers), PNGs out as base64.

The weights are the spec's `weights` source with `dir: base` (a diffusers folder:
model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/); an optional
second source with `dir: adapter` holds a LoRA adapter (one .safetensors file) that is
fused into the weights at load, so a fine-tuned variant is a spec change. Point
either at another folder with PACKAGER_WEIGHTS_DIR (or packager.load(weights_dir=...)).

On a GPU the model runs in float16 (SD_DTYPE overrides: float16, bfloat16, float32),
on CPU in float32. Attention is PyTorch's scaled_dot_product_attention;
PACKAGER_TORCH_COMPILE=1 compiles the UNet. The safety checker is not loaded.

The pipeline (inputs, samplers, size and token checks, LoRA, PNGs) is packager.diffusion's,
shared by the catalogue's Stable Diffusion entries; this file says which pipeline and defaults.
predict_concurrency must stay 1: the schedulers are reused between requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from packager.diffusion import GenerateRequest, GenerateResponse, TextToImage

PIPELINE = "StableDiffusionPipeline"
PIPELINE_KWARGS: dict[str, Any] = {
    "safety_checker": None,
    "feature_extractor": None,
    "requires_safety_checker": False,
}
PREFER_BF16 = False  # float16 is as good, and T4s have no fast bfloat16


class Model:
    def __init__(self, device: str, weights: dict[str, Path]) -> None:
        self.sd = TextToImage(weights, device, PIPELINE, PIPELINE_KWARGS, prefer_bf16=PREFER_BF16)

    def load(self) -> None:
        self.sd.load()

    def predict(self, inputs: GenerateRequest) -> GenerateResponse:
        return self.sd.generate(inputs)
