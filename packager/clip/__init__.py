"""`packager.clip`: CLIP embeddings and zero-shot classification shared by the catalogue's CLIP entries.

    from packager.clip import Clip, Request, Response

    class Model:
        def __init__(self, device, weights, spec):
            self.clip = Clip(weights, device, spec)

        def load(self):
            self.clip.load()

        def predict(self, inputs: Request) -> Response:
            return self.clip.predict(inputs)

        def predict_batch(self, batch: list[Request]) -> list[Response]:
            return self.clip.predict_batch(batch)   # one vision pass, one text pass per batch

Embeddings are L2-normalised; zero-shot probabilities are the softmax of the logit scale times
the cosine similarities. torch and transformers are imported when a model loads, not with this
module.
"""

from __future__ import annotations

from packager.clip._model import Clip
from packager.clip._request import MAX_ITEMS, Request, Response

__all__ = ["MAX_ITEMS", "Clip", "Request", "Response"]
