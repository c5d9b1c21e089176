"""Tiny random-init Stable Diffusion 1.x and SDXL pipelines, and a random LoRA for each.

Built from small configs with CLIP's real BPE tokenizer (see _tiny_clip.py), saved as diffusers
folders and cached under ~/.cache/packager-tests/, keyed by the diffusers, transformers and torch
versions. The images are noise (the weights are random), but every line of the entries' loading
and sampling code runs on them. Each pipeline is 64x64 px natively (sample size 32, VAE factor 2).
The SDXL one is saved in fp16 as the `fp16` variant, like the real repository's files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from _tiny_clip import BOS, CACHE, EOS, write_tokenizer_files

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


def tiny_pipeline(kind: str) -> Path:
    """The cached folder holding `base/` (the pipeline) and `lora/` for kind 'sd' or 'sdxl'."""
    import diffusers
    import torch
    import transformers

    versions = f"d{diffusers.__version__}-tf{transformers.__version__}-torch{torch.__version__}"
    target = CACHE / f"tiny-{kind}-{versions}-v1"
    if (target / ".complete").is_file():
        return target
    staging = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    write_tokenizer_files(staging / "_tok")
    tokenizer = transformers.CLIPTokenizer.from_pretrained(str(staging / "_tok"), model_max_length=77)
    torch.manual_seed(0)
    (_build_sd if kind == "sd" else _build_sdxl)(staging, tokenizer)
    shutil.rmtree(staging / "_tok")
    (staging / ".complete").write_text("ok\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def _text_config(**extra: Any) -> Any:
    from transformers import CLIPTextConfig

    sizes = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4}
    ids = {"bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": EOS}
    return CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, **sizes, **ids, **extra)


def _unet_config(**extra: Any) -> dict[str, Any]:
    blocks = {
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
    }
    return {
        "block_out_channels": (32, 64),
        "layers_per_block": 2,
        "sample_size": 32,
        "in_channels": 4,
        "out_channels": 4,
        **blocks,
        **extra,
    }


def _vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        sample_size=64,
    )


def _build_sd(folder: Path, tokenizer: Any) -> None:
    from diffusers import PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    unet_config = _unet_config(cross_attention_dim=32)
    # SD 1.5's own scheduler config: PNDM without the Runge-Kutta warm-up steps
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=_vae(),
        text_encoder=CLIPTextModel(_text_config()),
        tokenizer=tokenizer,
        unet=UNet2DConditionModel(**unet_config),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(folder / "base"))
    StableDiffusionPipeline.save_lora_weights(
        str(folder / "lora"), unet_lora_layers=_random_lora(unet_config)
    )


def _build_sdxl(folder: Path, tokenizer: Any) -> None:
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    unet_config = _unet_config(
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * 8
        + 32,  # six size/crop numbers, text_encoder_2's projection
        cross_attention_dim=64,  # both text encoders' hidden states side by side
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="leading",
        steps_offset=1,
    )
    pipe = StableDiffusionXLPipeline(
        vae=_vae(),
        text_encoder=CLIPTextModel(_text_config()),
        text_encoder_2=CLIPTextModelWithProjection(_text_config(projection_dim=32)),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=UNet2DConditionModel(**unet_config),
        scheduler=scheduler,
        image_encoder=None,
        feature_extractor=None,
        add_watermarker=False,
    )
    pipe.to(torch.float16).save_pretrained(str(folder / "base"), variant="fp16")
    StableDiffusionXLPipeline.save_lora_weights(
        str(folder / "lora"), unet_lora_layers=_random_lora(unet_config)
    )


def _random_lora(unet_config: dict[str, Any]) -> dict[str, Any]:
    """A rank-4 LoRA on every attention projection, both matrices random (an untrained one is a no-op)."""
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel(**unet_config)
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=LORA_TARGETS, init_lora_weights=False))
    return dict(get_peft_model_state_dict(unet))
