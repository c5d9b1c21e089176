"""A Truss directory built into an image with `pkg build`, unchanged: the container answers
Truss's own paths (`/v1/models/model`, `/v1/models/model:predict`) as a Truss deployment does, with
what `packager.load()` of the same directory gives (marker `docker`; see docker_helpers.py)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import httpx
import pytest
from docker_helpers import BASE, docker, engine_or_skip, running, unique_tag, wait_ready

import packager

pytestmark = pytest.mark.docker
TRUSS = Path(__file__).resolve().parents[1] / "fixtures" / "truss" / "greeter"


def test_a_truss_builds_into_an_image_that_serves_trusss_paths(tmp_path: Path) -> None:
    engine_or_skip()
    truss = tmp_path / "greeter"
    shutil.copytree(TRUSS, truss)
    expected = packager.load(truss).predict({"name": "docker"})
    tag = unique_tag("packager-truss")
    try:
        # Truss's default base cannot be pulled here: the local base image, from the command line
        assert packager.build(truss, tag=tag, base_image=BASE, log=io.StringIO()) == tag
        with running(tag) as box:
            wait_ready(box.url, "model")  # Truss's readiness path
            answer = httpx.post(f"{box.url}/v1/models/model:predict", json={"name": "docker"}, timeout=30)
            assert answer.status_code == 200, answer.text
            assert answer.json() == expected
            name = packager.read_package(truss).spec.name
            own = httpx.post(f"{box.url}/v1/models/{name}:predict", json={"name": "docker"}, timeout=30)
            assert own.json() == expected  # packager's own path answers too
    finally:
        docker("image", "rm", "--force", tag)
