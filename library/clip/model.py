"""CLIP (openai/clip-vit-base-patch32): image and text embeddings, zero-shot classification.

Embeddings are L2-normalised, so the dot product of an image's and a text's vectors is their
cosine similarity. Zero-shot classification scores each image against the given labels (each put
into `template`, "a photo of a {}."), as the CLIP paper does: softmax over the logit scale times
the cosine similarities, one probability per label, summing to 1.

`predict_batch` runs the images of every request in a batch through one vision forward pass and
their texts and labels through one text pass, so the server's dynamic batching pays off.
The weights folder comes from the `weights` argument (spec `weights:`), so
`packager.load(path, weights_dir=...)` or $PACKAGER_WEIGHTS_DIR points the entry at another copy.
The request, the batching and the scoring are packager.clip's, shared by the catalogue's CLIP
entries; this file only says which weights (package.yaml).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from packager.clip import Clip, Request, Response


class Model:
    def __init__(self, device: str, weights: dict[str, Path], spec: Any) -> None:
        self.clip = Clip(weights, device, spec)

    def load(self) -> None:
        self.clip.load()

    def predict(self, inputs: Request) -> Response:
        return self.clip.predict(inputs)

    def predict_batch(self, batch: list[Request]) -> list[Response]:
        return self.clip.predict_batch(batch)
