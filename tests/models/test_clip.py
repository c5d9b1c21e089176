"""library/clip and clip-vit-large on a tiny random-init CLIP with CLIP's real tokenizer.

The entries are pointed at the tiny folder with `weights_dir` (in process) and
$PACKAGER_WEIGHTS_DIR (the server): no code change, as a user with their own copy would do.
"""

from __future__ import annotations

import asyncio
import base64
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

import packager
from packager import InputError

sys.path.insert(0, str(Path(__file__).parent))
from _tiny_clip import tiny_clip_folder
from served import serve

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]
DIM = 16  # the tiny model's projection_dim


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


RED, BLUE, GREEN = _png((220, 20, 20)), _png((20, 20, 220)), _png((20, 200, 20), (64, 64))


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tiny_clip_folder()
    root = tmp_path_factory.mktemp("clip-weights")
    for name in ("clip-vit-base-patch32", "clip-vit-large-patch14"):  # each entry's weights `dir`
        (root / name).symlink_to(folder, target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def clip(weights_dir: Path) -> packager.ModelHandle:
    return packager.load(ROOT / "library" / "clip", weights_dir=weights_dir, device="cpu")


def _norms(rows: list[list[float]]) -> np.ndarray:
    return np.linalg.norm(np.asarray(rows, dtype=np.float64), axis=1)


def test_image_and_text_embeddings_are_unit_vectors_in_input_order(clip: packager.ModelHandle) -> None:
    out = clip.predict({"images": [RED, BLUE], "image": GREEN, "texts": ["a red square", "a blue one"]})
    assert set(out) == {"image_embeddings", "text_embeddings", "dim", "model"}
    assert (out["dim"], out["model"]) == (DIM, "openai/clip-vit-base-patch32")
    assert np.asarray(out["image_embeddings"]).shape == (3, DIM)
    assert np.asarray(out["text_embeddings"]).shape == (2, DIM)
    np.testing.assert_allclose(_norms(out["image_embeddings"] + out["text_embeddings"]), 1.0, atol=1e-5)
    alone = clip.predict({"image": BLUE})["image_embeddings"][0]
    np.testing.assert_allclose(out["image_embeddings"][1], alone, atol=1e-5)  # order kept
    assert not np.allclose(out["image_embeddings"][0], alone, atol=1e-3)


def test_zero_shot_probabilities_sum_to_one_and_match_the_similarities(clip: packager.ModelHandle) -> None:
    labels = ["cat", "dog", "traffic light", "bowl of soup"]
    out = clip.predict({"images": [RED, GREEN], "labels": labels})
    probs = np.asarray(out["probabilities"])
    assert out["labels"] == labels
    assert probs.shape == (2, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert out["predictions"] == [labels[i] for i in probs.argmax(axis=1)]
    prompts = clip.predict({"texts": [f"a photo of a {label}." for label in labels]})["text_embeddings"]
    scale = float(clip.model.clip.logit_scale.detach().exp())
    logits = scale * np.asarray(out["image_embeddings"]) @ np.asarray(prompts).T
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_the_template_changes_the_prompts(clip: packager.ModelHandle) -> None:
    plain = clip.predict({"image": RED, "labels": ["cat", "dog"]})["probabilities"]
    other = clip.predict({"image": RED, "labels": ["cat", "dog"], "template": "{} drawn in crayon"})[
        "probabilities"
    ]
    assert not np.allclose(plain, other, atol=1e-6)


def _validated(handle: packager.ModelHandle, raw: dict[str, Any]) -> Any:
    return sys.modules[type(handle.model).__module__].Request.model_validate(raw)


def test_predict_batch_equals_predict_one_by_one(clip: packager.ModelHandle) -> None:
    raws = [
        {"image": RED, "labels": ["cat", "dog"]},
        {"texts": ["a photo of a cat.", "hello"]},  # shares a prompt with the first request
        {"images": [GREEN, BLUE], "text": "two", "labels": ["dog", "car", "cat"], "template": "{}!"},
    ]
    batched = clip.model.predict_batch([_validated(clip, r) for r in raws])
    for raw, got in zip(raws, batched):
        single = clip.predict(raw)
        assert got.keys() == single.keys()
        for key, value in single.items():
            if isinstance(value, list) and value and isinstance(value[0], list):
                np.testing.assert_allclose(got[key], value, atol=1e-5)
            else:
                assert got[key] == value


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"image": "not-an-image"}, "image"),
        ({"images": [RED, base64.b64encode(b"GIF89a junk").decode()]}, "images.1"),
        ({"texts": ["x"], "labels": ["a"]}, "labels"),
        ({}, "image"),
    ],
)
def test_bad_inputs_are_input_errors_naming_the_field(
    clip: packager.ModelHandle, raw: Any, field: str
) -> None:
    with pytest.raises(InputError) as caught:
        clip.predict(raw)
    assert field in str(caught.value)


def test_the_large_entry_runs_the_same_code_on_its_own_weights_folder(weights_dir: Path) -> None:
    large = packager.load(ROOT / "library" / "clip-vit-large", weights_dir=weights_dir, device="cpu")
    out = large.predict({"image": RED, "labels": ["a", "b"]})
    assert out["model"] == "openai/clip-vit-large-patch14"
    assert abs(sum(out["probabilities"][0]) - 1) < 1e-6


@pytest.fixture(scope="module")
def server(weights_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("clip-server") / "server.log"
    env = {"PACKAGER_WEIGHTS_DIR": str(weights_dir), "PACKAGER_DEVICE": "cpu"}
    with serve(ROOT / "library" / "clip", log, env=env) as url:
        yield url


def test_over_http_a_bad_image_is_422_naming_the_field(server: str) -> None:
    reply = httpx.post(
        f"{server}/v1/models/clip:predict", json={"images": [RED, "bm90IGFuIGltYWdl"]}, timeout=30
    )
    assert reply.status_code == 422, reply.text
    assert "images.1" in reply.text
    assert "is not an image" in reply.text


def test_over_http_concurrent_requests_give_the_in_process_answers(
    server: str, clip: packager.ModelHandle
) -> None:
    bodies = [{"image": [RED, BLUE, GREEN][i % 3], "labels": ["cat", "dog", f"thing {i}"]} for i in range(9)]

    async def post_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server, timeout=60) as client:
            return await asyncio.gather(*(client.post("/v1/models/clip:predict", json=b) for b in bodies))

    replies = asyncio.run(post_all())
    for body, reply in zip(bodies, replies):
        assert reply.status_code == 200, reply.text
        np.testing.assert_allclose(
            reply.json()["probabilities"], clip.predict(body)["probabilities"], atol=1e-5
        )
