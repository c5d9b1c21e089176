"""library/minilm: real all-MiniLM-L6-v2 embeddings through packager.load()."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import packager
from packager import InputError

pytestmark = pytest.mark.model

PACKAGE = Path(__file__).resolve().parents[2] / "library" / "minilm"


@pytest.fixture(scope="module")
def minilm() -> packager.ModelHandle:
    return packager.load(PACKAGE)


def _vectors(handle: packager.ModelHandle, texts: list[str], **extra: Any) -> np.ndarray:
    out = handle.predict({"texts": texts, **extra})
    return np.asarray(out["embeddings"], dtype=np.float64)


def _request(handle: packager.ModelHandle, raw: dict[str, Any]) -> Any:
    """The validated request object, as the server hands it to predict_batch."""
    return sys.modules[type(handle.model).__module__].EmbedRequest.model_validate(raw)


def test_output_has_one_unit_vector_of_384_per_text(minilm: packager.ModelHandle) -> None:
    out = minilm.predict({"texts": ["first text", "second, longer text here"]})
    assert set(out) == {"embeddings", "dim", "model", "tokens"}
    assert out["dim"] == 384
    assert out["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    vectors = np.asarray(out["embeddings"])
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert out["tokens"] == 4 + 7  # word pieces, [CLS] and [SEP] included


def test_similar_meanings_are_close_and_unrelated_ones_far(minilm: packager.ModelHandle) -> None:
    cat, kitten, stocks = _vectors(minilm, ["cat", "kitten", "stock market"])
    near, far = float(cat @ kitten), float(cat @ stocks)
    assert near > 0.6
    assert far < 0.35
    assert near - far > 0.4


def test_single_text_form_equals_list_form(minilm: packager.ModelHandle) -> None:
    one = minilm.predict({"text": "A cat sits on the mat."})
    listed = minilm.predict({"texts": ["A cat sits on the mat."]})
    np.testing.assert_allclose(one["embeddings"], listed["embeddings"], atol=1e-6)


def test_normalize_false_gives_the_raw_mean_pooled_vector(minilm: packager.ModelHandle) -> None:
    texts = ["Embeddings without L2 normalisation.", "short"]
    raw = _vectors(minilm, texts, normalize=False)
    unit = _vectors(minilm, texts)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), unit, atol=1e-5)


def test_predict_batch_equals_predict_per_request(minilm: packager.ModelHandle) -> None:
    raws = [
        {"text": "A cat sits on the mat."},
        {"texts": ["kitten", "The stock market fell sharply on Monday after weak earnings reports."]},
        {"texts": ["unnormalised", "vectors"], "normalize": False},
        {"text": ""},
        {"texts": ["a " * 40]},
    ]
    requests = [_request(minilm, raw) for raw in raws]
    batched = minilm.model.predict_batch(requests)
    assert len(batched) == len(raws)
    for raw, got in zip(raws, batched):
        single = minilm.predict(raw)
        assert got["tokens"] == single["tokens"]
        assert len(got["embeddings"]) == len(single["embeddings"])
        np.testing.assert_allclose(got["embeddings"], single["embeddings"], atol=1e-5)


def test_predict_batch_runs_one_forward_pass(
    minilm: packager.ModelHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = minilm.model.encoder
    calls: list[tuple[int, ...]] = []
    original = type(encoder).forward

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(tuple(kwargs["input_ids"].shape))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(encoder), "forward", counting)
    requests = [_request(minilm, {"texts": [f"sentence number {i}"] * (i + 1)}) for i in range(6)]
    minilm.model.predict_batch(requests)
    assert len(calls) == 1
    assert calls[0][0] == sum(range(1, 7))


def test_long_text_is_truncated_to_256_tokens(minilm: packager.ModelHandle) -> None:
    out = minilm.predict({"text": "word " * 1000})
    assert out["tokens"] == 256
    assert len(out["embeddings"][0]) == 384


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "give either 'texts'"),
        ({"text": "a", "texts": ["b"]}, "give either 'texts'"),
        ({"texts": []}, "at least 1 item"),
        ({"texts": ["x"] * 257}, "at most 256 items"),
        ({"texts": "not a list"}, "valid list"),
        ({"text": "a", "unknown": 1}, "unknown: Extra inputs are not permitted"),
    ],
)
def test_bad_input_is_rejected_with_its_reason(
    minilm: packager.ModelHandle, raw: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        minilm.predict(raw)


def test_every_example_runs_and_matches_any_expected_output(minilm: packager.ModelHandle) -> None:
    assert minilm.spec.examples, "package.yaml should carry examples"
    for example in minilm.spec.examples:
        out = minilm.predict(minilm.example(example.name))
        texts = example.input.get("texts") or [example.input["text"]]
        vectors = np.asarray(out["embeddings"])
        assert vectors.shape == (len(texts), 384), example.name
        assert np.isfinite(vectors).all(), example.name
        if example.input.get("normalize", True):
            np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        if example.output is not None:
            assert out == example.output, example.name


def test_schema_describes_the_request_and_response(minilm: packager.ModelHandle) -> None:
    schema = minilm.schema()
    assert schema["batching"] is True
    assert set(schema["input"]["properties"]) == {"texts", "text", "normalize"}
    assert schema["output"]["required"] == ["embeddings", "dim", "model", "tokens"]
