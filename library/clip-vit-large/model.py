"""CLIP ViT-L/14 (openai/clip-vit-large-patch14): image and text embeddings, zero-shot classification.

Everything (the request, L2-normalised embeddings, zero-shot softmax over the labels put into
`template`, `predict_batch` folding a batch into one vision and one text pass) is packager.clip's
`Clip`, shared by the catalogue's CLIP entries. The weights folder comes from the `weights`
argument (spec `weights:`), so `packager.load(path, weights_dir=...)` or $PACKAGER_WEIGHTS_DIR
points the entry at another copy.
"""

from __future__ import annotations

from packager.clip import Clip, Request, Response

__all__ = ["Model", "Request", "Response"]  # Request, Response: predict's input and output types


class Model(Clip):
    """packager.clip's CLIP (load, predict, predict_batch) on this entry's weights folder."""
