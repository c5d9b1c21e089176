"""CLIP ViT-L/14 (openai/clip-vit-large-patch14): image and text embeddings, zero-shot classification.

Embeddings are L2-normalised, so the dot product of an image's and a text's vectors is their
cosine similarity. Zero-shot classification scores each image against the given labels (each put
into `template`, "a photo of a {}."), as the CLIP paper does: softmax over the logit scale times
the cosine similarities, one probability per label, summing to 1.

`predict_batch` runs the images of every request in a batch through one vision forward pass and
their texts and labels through one text pass, so the server's dynamic batching pays off.
The weights folder comes from the `weights` argument (spec `weights:`), so
`packager.load(path, weights_dir=...)` or $PACKAGER_WEIGHTS_DIR points the entry at another copy.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from typing_extensions import NotRequired, TypedDict  # pydantic needs these before Python 3.12

from packager.io import ImageInput

MAX_ITEMS = 64  # images, texts or labels per request


class Request(BaseModel):
    """Images and/or texts to embed; with `labels`, each image is also classified against them."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    images: list[ImageInput] = Field(
        default_factory=list, max_length=MAX_ITEMS, description="Images: base64, data URI or http(s) URL."
    )
    image: ImageInput | None = Field(None, description="One image (shorthand for images: [image]).")
    texts: list[str] = Field(default_factory=list, max_length=MAX_ITEMS, description="Texts to embed.")
    text: str | None = Field(None, description="One text (shorthand for texts: [text]).")
    labels: list[str] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        description="Zero-shot labels each image is scored against.",
    )
    template: str = Field("a photo of a {}.", description="Prompt each label is put into; '{}' marks where.")

    @model_validator(mode="after")
    def _check(self) -> Request:
        if not (self.all_images() or self.all_texts()):
            raise ValueError("give 'image'/'images' and/or 'text'/'texts'")
        if self.labels and not self.all_images():
            raise ValueError("'labels' classify images: give 'image' or 'images' too")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("'labels' must be distinct")
        if "{}" not in self.template:
            raise ValueError("'template' must contain '{}' where the label goes")
        return self

    def all_images(self) -> list[Any]:
        return [*self.images, *([self.image] if self.image is not None else [])]

    def all_texts(self) -> list[str]:
        return [*self.texts, *([self.text] if self.text is not None else [])]

    def prompts(self) -> list[str]:
        return [self.template.replace("{}", label) for label in self.labels]


class Response(TypedDict):
    """Embeddings in input order; with labels, one probability per label for each image."""

    image_embeddings: NotRequired[list[list[float]]]
    text_embeddings: NotRequired[list[list[float]]]
    labels: NotRequired[list[str]]
    probabilities: NotRequired[list[list[float]]]
    predictions: NotRequired[list[str]]
    dim: int
    model: str


class Model:
    def __init__(self, device: str, weights: dict[str, Any], spec: Any) -> None:
        self.device = device
        self.folder = next(iter(weights.values()))
        self.model_id = spec.weights[0].source.removeprefix("hf://").split("@")[0]
        self.clip: Any = None
        self.tokenizer: Any = None
        self.pixels: Any = None
        self._torch: Any = None

    def load(self) -> None:
        import torch
        from transformers import CLIPModel, CLIPTokenizer

        dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        place = {"device_map": self.device} if self.device != "cpu" else {}
        self.clip = CLIPModel.from_pretrained(
            self.folder, dtype=dtype, attn_implementation="sdpa", local_files_only=True, **place
        ).eval()
        self.tokenizer = CLIPTokenizer.from_pretrained(self.folder, local_files_only=True)
        self.pixels = _image_processor().from_pretrained(self.folder, local_files_only=True)
        if os.environ.get("PACKAGER_TORCH_COMPILE") == "1":
            self.clip.vision_model = torch.compile(self.clip.vision_model)
            self.clip.text_model = torch.compile(self.clip.text_model)
        self._torch = torch

    def predict(self, inputs: Request) -> Response:
        return self.predict_batch([inputs])[0]

    def predict_batch(self, batch: list[Request]) -> list[Response]:
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
