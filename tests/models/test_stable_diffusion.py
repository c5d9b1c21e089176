"""library/stable-diffusion and library/sdxl on tiny random-init pipelines (_tiny_sd.py), on CPU.

The entries are loaded as they are, their `base` weights pointed at the tiny pipeline with
`weights_dir` (as PACKAGER_WEIGHTS_DIR does), so their own loading and sampling code runs. A
LoRA is added as a spec change only: a copy of the entry with a second, local weight source.
"""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from _tiny_sd import tiny_pipeline
from served import serve

import packager
from packager import InputError

ROOT = Path(__file__).resolve().parents[2]
ENTRIES = {"sd": ROOT / "library" / "stable-diffusion", "sdxl": ROOT / "library" / "sdxl"}
FAST = {"steps": 2}  # the tiny pipelines' native size is 64x64

pytestmark = [
    # diffusers' Euler/DPM schedulers call np.array() on torch tensors (numpy 2 deprecation)
    pytest.mark.filterwarnings(
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
    ),
]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Any:
    """Tiny models on a shared 2-core machine: one torch thread is ~10x faster than two busy ones."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=["sd", "sdxl"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def model(kind: str) -> Any:
    with packager.load(ENTRIES[kind], device="cpu", weights_dir=tiny_pipeline(kind)) as handle:
        yield handle


def png(text: str) -> Any:
    from PIL import Image

    data = base64.b64decode(text, validate=True)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def pixels(text: str) -> Any:
    return np.asarray(png(text), dtype=np.int16)


def test_pngs_of_the_requested_size(model: Any) -> None:
    out = model.predict(prompt="a red cube", width=96, height=48, seed=3, **FAST)
    assert (out["width"], out["height"], out["seeds"]) == (96, 48, [3])
    image = png(out["images"][0])
    assert (image.format, image.size, image.mode) == ("PNG", (96, 48), "RGB")
    assert any(low < high for low, high in image.getextrema())  # not a blank square
    default = png(model.predict(prompt="a red cube", seed=3, **FAST)["images"][0])
    assert default.size == (64, 64)  # the model's native size


def test_same_seed_same_image_other_seed_other_image(model: Any) -> None:
    request = {"prompt": "a lighthouse", "negative_prompt": "fog", "guidance": 5.0, **FAST}
    first = model.predict(seed=11, **request)["images"]
    assert model.predict(seed=11, **request)["images"] == first
    assert model.predict(seed=12, **request)["images"] != first
    assert model.predict(seed=11, **{**request, "prompt": "a windmill"})["images"] != first


def test_n_images_one_seed_each(model: Any) -> None:
    out = model.predict(prompt="a cat", seed=20, num_images=3, **FAST)
    assert out["seeds"] == [20, 21, 22]
    assert [png(i).size for i in out["images"]] == [(64, 64)] * 3
    assert len(set(out["images"])) == 3
    # image k is what seed+k gives alone (up to batched float rounding): any one can be made again
    alone = pixels(model.predict(prompt="a cat", seed=21, **FAST)["images"][0])
    assert np.abs(alone - pixels(out["images"][1])).max() <= 2
    assert np.abs(alone - pixels(out["images"][0])).max() > 2
    unseeded = model.predict(prompt="a cat", **FAST)
    assert len(unseeded["seeds"]) == 1
    assert 0 <= unseeded["seeds"][0] < 2**32


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({"width": 136}, "width"),  # more than twice the native 64
        ({"height": 24}, "height"),  # less than half
        ({"width": 60}, "width"),  # not a multiple of 8
        ({"width": 128, "height": 128, "num_images": 2}, "num_images"),  # 8 native images' pixels
        ({"prompt": ""}, "prompt"),
        ({"prompt": "cat " * 80}, "prompt"),  # more than CLIP's 77 tokens
        ({"negative_prompt": "dog " * 80}, "negative_prompt"),
        ({"scheduler": "heun"}, "scheduler"),
        ({"num_images": 5}, "num_images"),
    ],
)
def test_bad_input_is_422_naming_the_field(model: Any, request_: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        model.predict({"prompt": "a cat", **FAST, **request_})
    assert caught.value.status_code == 422
    assert [e["loc"][-1] for e in caught.value.errors] == [field]
    assert field in str(caught.value)


def test_every_scheduler_runs_and_matters(model: Any) -> None:
    names = ["ddim", "euler", "euler_a", "dpm++", "pndm"]
    outs = {n: model.predict(prompt="a tree", seed=5, scheduler=n, steps=3) for n in names}
    assert [outs[n]["scheduler"] for n in names] == names
    assert all(png(o["images"][0]).size == (64, 64) for o in outs.values())
    # ancestral sampling adds fresh noise at each step: it must differ from deterministic DDIM
    assert outs["euler_a"]["images"] != outs["ddim"]["images"]
    again = model.predict(prompt="a tree", seed=5, scheduler="euler_a", steps=3)
    assert again["images"] == outs["euler_a"]["images"]  # switching back and forth keeps no state


def test_lora_is_a_spec_change_and_changes_the_output(kind: str, model: Any, tmp_path: Path) -> None:
    weights = tiny_pipeline(kind)
    package = tmp_path / ENTRIES[kind].name
    shutil.copytree(ENTRIES[kind], package)
    shutil.copytree(weights / "lora", package / "adapter")
    spec = yaml.safe_load((package / "package.yaml").read_text())
    spec["weights"].append({"source": "./adapter", "dir": "adapter"})
    (package / "package.yaml").write_text(yaml.safe_dump(spec))
    request = {"prompt": "a boat", "seed": 9, **FAST}
    with packager.load(package, device="cpu", weights_dir=weights) as tuned:
        with_lora = tuned.predict(request)["images"]
    assert png(with_lora[0]).size == (64, 64)
    assert with_lora != model.predict(request)["images"]


def test_missing_weights_say_how_to_fetch_them(kind: str, tmp_path: Path) -> None:
    with pytest.raises(packager.ModelLoadError, match=r"model_index\.json.*pkg weights"):
        packager.load(ENTRIES[kind], device="cpu", weights_dir=tmp_path)


def test_served_with_the_weights_dir_from_the_environment(tmp_path: Path) -> None:
    """`pkg serve` finds the weights through PACKAGER_WEIGHTS_DIR; PNGs come back, bad sizes are 422."""
    env = {"PACKAGER_WEIGHTS_DIR": str(tiny_pipeline("sd")), "OMP_NUM_THREADS": "1"}
    with serve(ENTRIES["sd"], tmp_path / "server.log", env=env) as url:
        url += "/v1/models/stable-diffusion:predict"
        ok = httpx.post(url, json={"prompt": "a cat", "seed": 1, "width": 80, **FAST}, timeout=60)
        assert ok.status_code == 200, ok.text
        assert png(ok.json()["images"][0]).size == (80, 64)
        for bad, field in (({"width": 512}, "width"), ({"prompt": "cat " * 80}, "prompt")):
            answer = httpx.post(url, json={"prompt": "a cat", **FAST, **bad}, timeout=60)
            assert answer.status_code == 422, answer.text
            assert [e["loc"][-1] for e in answer.json()["errors"]] == [field]
