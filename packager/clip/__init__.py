"""`packager.clip`: CLIP embeddings and zero-shot classification shared by the catalogue's CLIP entries.

    from packager.clip import Clip, Request, Response   # Request, Response: the schema

    class Model(Clip):   # load, predict and predict_batch (one vision pass, one text pass per batch)
        pass   # CLIP on this entry's weights folder; the spec's first weights source names it

`Model.clip` is the loaded transformers CLIPModel.
Embeddings are L2-normalised; zero-shot probabilities are the softmax of the logit scale times
the cosine similarities. torch and transformers are imported when a model loads, not with this
module.
"""

from __future__ import annotations

from packager.clip._model import Clip
from packager.clip._request import MAX_ITEMS, Request, Response

__all__ = ["MAX_ITEMS", "Clip", "Request", "Response"]
