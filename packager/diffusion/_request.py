"""The text-to-image request and response, the samplers and the size limits."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

SchedulerName = Literal["ddim", "euler", "euler_a", "dpm++", "pndm"]
DEFAULT_SCHEDULER: SchedulerName = "dpm++"
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


class GenerateRequest(BaseModel):
    """One prompt; `num_images` images from seeds seed, seed+1, ..."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, description="What to draw (at most 77 CLIP tokens).")
    negative_prompt: Optional[str] = Field(None, description="What to steer away from.")
    seed: Optional[int] = Field(
        None, ge=0, lt=2**32, description="Random seed; omitted: a random one (returned)."
    )
    steps: int = Field(DEFAULT_STEPS, ge=1, le=150, description="Denoising steps.")
    guidance: float = Field(DEFAULT_GUIDANCE, ge=0, le=30, description="Classifier-free guidance scale.")
    width: Optional[int] = Field(
        None, ge=8, le=4096, multiple_of=8, description="Pixels; default: the model's."
    )
    height: Optional[int] = Field(
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
