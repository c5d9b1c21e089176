"""`packager.diffusion`: text to image shared by the catalogue's Stable Diffusion entries.

    from packager.diffusion import GenerateRequest, GenerateResponse, TextToImage

    class Model:
        def __init__(self, device, weights):
            self.sd = TextToImage(weights, device, "StableDiffusionPipeline")

        def load(self):
            self.sd.load()

        def predict(self, inputs: GenerateRequest) -> GenerateResponse:
            return self.sd.generate(inputs)   # PNGs (base64), seeds, size, scheduler

The weights are `weights["base"]` (a diffusers folder) and an optional `weights["adapter"]`
(one LoRA .safetensors file, fused at load). Sizes are checked against the model's native size
and prompts against the text encoder's token limit, each failure an InputError naming the field.
torch, diffusers and transformers are imported when a model loads, not with this module.
"""

from __future__ import annotations

from packager.diffusion._model import TextToImage
from packager.diffusion._request import (
    DEFAULT_GUIDANCE,
    DEFAULT_SCHEDULER,
    DEFAULT_STEPS,
    MAX_IMAGES,
    MAX_PIXELS,
    SCHEDULERS,
    SIZE_RANGE,
    GenerateRequest,
    GenerateResponse,
    SchedulerName,
)

__all__ = [
    "DEFAULT_GUIDANCE",
    "DEFAULT_SCHEDULER",
    "DEFAULT_STEPS",
    "MAX_IMAGES",
    "MAX_PIXELS",
    "SCHEDULERS",
    "SIZE_RANGE",
    "GenerateRequest",
    "GenerateResponse",
    "SchedulerName",
    "TextToImage",
]
