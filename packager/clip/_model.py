"""Clip: a CLIP model's image and text towers, run once per batch of requests."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packager._spec import Spec
from packager.clip._request import Request, Response


class Clip:
    """The CLIP model in the (only) weights folder; `spec`'s first source names it in answers."""

    def __init__(self, weights: Mapping[str, Path], device: str, spec: Spec) -> None:
        self.device = device
        self.folder = next(iter(weights.values()))
        self.model_id = spec.weights[0].source.removeprefix("hf://").split("@")[0]
        self.clip: Any = None
        self.tokenizer: Any = None
        self.pixels: Any = None
        self._torch: Any = None

    def load(self) -> None:
        """float16 on a GPU, float32 on CPU; PACKAGER_TORCH_COMPILE=1 compiles both towers."""
        import torch
        from transformers import CLIPModel, CLIPTokenizer

        dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        place: dict[str, Any] = {"device_map": self.device} if self.device != "cpu" else {}
        model: Any = CLIPModel.from_pretrained(
            self.folder, dtype=dtype, attn_implementation="sdpa", local_files_only=True, **place
        )
        self.clip = model.eval()
        self.tokenizer = CLIPTokenizer.from_pretrained(self.folder, local_files_only=True)
        self.pixels = _image_processor().from_pretrained(self.folder, local_files_only=True)
        if os.environ.get("PACKAGER_TORCH_COMPILE") == "1":
            self.clip.vision_model = torch.compile(self.clip.vision_model)
            self.clip.text_model = torch.compile(self.clip.text_model)
        self._torch = torch

    def predict(self, inputs: Request) -> Response:
        """One request: a batch of one."""
        return self.predict_batch([inputs])[0]

    def predict_batch(self, batch: list[Request]) -> list[Response]:
        """Every request's images in one vision pass, their distinct texts and prompts in one text pass."""
        images = [image for request in batch for image in request.all_images()]
        texts = list(dict.fromkeys(t for r in batch for t in [*r.all_texts(), *r.prompts()]))
        image_vectors = self._images(images)
        text_vectors = self._texts(texts)
        row = {text: i for i, text in enumerate(texts)}
        scale = float(self.clip.logit_scale.detach().exp())
        out, start = [], 0
        for request in batch:
            count = len(request.all_images())
            mine = image_vectors[start : start + count]
            start += count
            out.append(self._respond(request, mine, text_vectors, row, scale))
        return out

    def _respond(
        self, request: Request, images: Any, texts: Any, row: dict[str, int], scale: float
    ) -> Response:
        torch = self._torch
        said = [row[t] for t in request.all_texts()]
        response: Response = {"dim": int(self.clip.config.projection_dim), "model": self.model_id}
        if len(images):
            response["image_embeddings"] = images.tolist()
        if said:
            response["text_embeddings"] = texts[said].tolist()
        if request.labels:
            prompts = texts[[row[p] for p in request.prompts()]]
            probs = torch.softmax(scale * images @ prompts.T, dim=-1)
            response["labels"] = request.labels
            response["probabilities"] = probs.tolist()
            response["predictions"] = [request.labels[i] for i in probs.argmax(dim=-1).tolist()]
        return response

    def _images(self, images: list[Any]) -> Any:
        if not images:
            return self._torch.empty(0, self.clip.config.projection_dim)
        pixels = self.pixels(images=images, return_tensors="pt")["pixel_values"]
        with self._torch.inference_mode():
            vectors = _tensor(
                self.clip.get_image_features(pixel_values=pixels.to(self.device, self.clip.dtype))
            )
        return self._torch.nn.functional.normalize(vectors.float(), dim=-1).cpu()

    def _texts(self, texts: list[str]) -> Any:
        if not texts:
            return self._torch.empty(0, self.clip.config.projection_dim)
        tokens = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True).to(self.device)
        with self._torch.inference_mode():
            vectors = _tensor(self.clip.get_text_features(**tokens))
        return self._torch.nn.functional.normalize(vectors.float(), dim=-1).cpu()


def _image_processor() -> Any:
    """The PIL-based CLIP image processor (transformers 5 without torchvision), else the classic one."""
    try:
        from transformers import CLIPImageProcessorPil

        return CLIPImageProcessorPil
    except ImportError:
        from transformers import CLIPImageProcessor

        return CLIPImageProcessor


def _tensor(features: Any) -> Any:
    """transformers 4.x returns the projected vectors; 5.x may wrap them in an output object."""
    return features if hasattr(features, "shape") else features.pooler_output
