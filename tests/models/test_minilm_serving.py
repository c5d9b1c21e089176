"""library/minilm behind the real server: concurrent requests are batched and answered correctly."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from served import serve

import packager

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "library" / "minilm"
TEXTS = [
    f"Sentence number {i} is about {topic}." for i, topic in enumerate(["cats", "stocks", "rain", "code"] * 6)
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(PACKAGE, tmp_path_factory.mktemp("minilm-server") / "server.log") as url:
        yield url


async def _post_all(url: str, bodies: list[dict[str, object]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        return await asyncio.gather(*(client.post("/v1/models/minilm:predict", json=b) for b in bodies))


def _batch_sizes(url: str) -> tuple[float, float]:
    """(sum, count) of the server's packager_batch_size histogram."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = dict(re.findall(r'^packager_batch_size_(sum|count)\{model="minilm"\} (\S+)$', text, re.M))
    return float(found["sum"]), float(found["count"])


def test_concurrent_requests_are_batched_and_match_in_process_results(server: str) -> None:
    local = packager.load(PACKAGE)
    before = _batch_sizes(server)
    responses = asyncio.run(_post_all(server, [{"text": t} for t in TEXTS]))
    assert [r.status_code for r in responses] == [200] * len(TEXTS)
    for text, response in zip(TEXTS, responses):
        body = response.json()
        assert body["dim"] == 384
        expected = local.predict({"text": text})["embeddings"]
        np.testing.assert_allclose(body["embeddings"], expected, atol=1e-5)
    total, calls = (after - was for after, was in zip(_batch_sizes(server), before))
    assert total == len(TEXTS)
    assert calls < len(TEXTS), "concurrent requests should share predict_batch calls"


def test_bad_input_gets_422_with_the_reason(server: str) -> None:
    response = httpx.post(f"{server}/v1/models/minilm:predict", json={"texts": []}, timeout=30)
    assert response.status_code == 422
    assert "at least 1 item" in response.json()["error"]


def test_example_curl_from_the_readme(server: str) -> None:
    texts = ["A cat sits on the mat.", "A kitten sleeps on a rug."]
    response = httpx.post(f"{server}/v1/models/minilm:predict", json={"texts": texts}, timeout=30)
    body = response.json()
    assert response.status_code == 200
    assert np.asarray(body["embeddings"]).shape == (2, 384)
    assert body["model"] == "sentence-transformers/all-MiniLM-L6-v2"
