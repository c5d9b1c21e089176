"""TextToImage: a diffusers text-to-image pipeline behind a checked request, PNGs out."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from packager._errors import InputError
from packager.diffusion._load import fuse_lora, load_pipeline, pick_dtype
from packager.diffusion._request import (
    MAX_IMAGES,
    MAX_PIXELS,
    SCHEDULERS,
    SIZE_RANGE,
    GenerateRequest,
    GenerateResponse,
)
from packager.io import encode_image


class TextToImage:
    """One diffusers pipeline (`pipeline`: its class name) and the samplers it is run with.

    Not safe for concurrent predicts: the schedulers are reused between requests.
    """

    def __init__(
        self,
        weights: Mapping[str, Path],
        device: str,
        pipeline: str,
        pipeline_kwargs: Optional[dict[str, Any]] = None,
        prefer_bf16: bool = False,
    ) -> None:
        self.device = device
        self.base = weights.get("base")
        self.lora = weights.get("adapter")
        self.pipeline = pipeline
        self.pipeline_kwargs = dict(pipeline_kwargs or {})
        self.prefer_bf16 = prefer_bf16
        self.pipe: Any = None
        self.native = 0
        self._schedulers: dict[str, Any] = {}
        self._scheduler_config: Any = None
        self._torch: Any = None

    def load(self) -> None:
        """Load the pipeline (and fuse the LoRA adapter, if any); LORA_SCALE, PACKAGER_TORCH_COMPILE."""
        import torch

        self._torch = torch
        dtype = pick_dtype(torch, self.device, self.prefer_bf16)
        self.pipe = load_pipeline(self.base, self.device, dtype, self.pipeline, self.pipeline_kwargs)
        if self.lora is not None:
            fuse_lora(self.pipe, self.lora, float(os.environ.get("LORA_SCALE", "1.0")))
        if os.environ.get("PACKAGER_TORCH_COMPILE") == "1":
            self.pipe.unet = torch.compile(self.pipe.unet)
        self.native = int(self.pipe.unet.config.sample_size) * int(self.pipe.vae_scale_factor)
        self._scheduler_config = self.pipe.scheduler.config  # the one the weights came with

    def generate(self, inputs: GenerateRequest) -> GenerateResponse:
        """`num_images` PNGs (base64) for the prompt, with the seeds they were drawn from."""
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
                    f"{value} is outside {low}-{high} for this model (native {self.native}); "
                    "use a multiple of 8 in that range",
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
