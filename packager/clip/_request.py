"""The CLIP request (images and/or texts, optional zero-shot labels) and its response."""

from __future__ import annotations

from typing import Any, Optional

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
    image: Optional[ImageInput] = Field(None, description="One image (shorthand for images: [image]).")
    texts: list[str] = Field(default_factory=list, max_length=MAX_ITEMS, description="Texts to embed.")
    text: Optional[str] = Field(None, description="One text (shorthand for texts: [text]).")
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
        """`images`, then `image`."""
        return [*self.images, *([self.image] if self.image is not None else [])]

    def all_texts(self) -> list[str]:
        """`texts`, then `text`."""
        return [*self.texts, *([self.text] if self.text is not None else [])]

    def prompts(self) -> list[str]:
        """Each label put into the template."""
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
