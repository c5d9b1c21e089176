"""The optional API key (runtime.api_key_secret): who needs it, how it is sent, what a refusal says."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from packager._errors import SecretError, SpecError
from packager._pipeline import Pipeline
from packager._server import create_app
from packager._server._app import App
from packager._spec_load import read_package

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "serving"
KEY = "s3cret-key-0123"
PUBLIC = [
    "/",
    "/v2/health/live",
    "/v2/health/ready",
    "/v1/models/secured",
    "/v2/models/secured/ready",
    "/metrics",
]
PROTECTED = [
    ("POST", "/v1/models/secured:predict"),
    ("POST", "/v2/models/secured/infer"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/secured/schema"),
    ("GET", "/openapi.json"),
    ("GET", "/v2"),
    ("GET", "/v2/models/secured"),
    ("GET", "/nowhere"),
]
INFER = {"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1]}]}


@contextlib.asynccontextmanager
async def secured(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[App, httpx.AsyncClient]]:
    monkeypatch.setenv("PACKAGER_SECRET_API_KEY", KEY)
    app = create_app(Pipeline(read_package(FIXTURES / "secured")))
    await app.startup()
    await app.wait_loaded()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
            yield app, client
    finally:
        await app.shutdown()


def test_liveness_readiness_and_metrics_need_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    async def test() -> None:
        async with secured(monkeypatch) as (_, client):
            for path in PUBLIC:
                assert (await client.get(path)).status_code == 200, path

    asyncio.run(test())


def test_every_other_route_needs_the_key_and_refuses_with_a_json_401(monkeypatch: pytest.MonkeyPatch) -> None:
    async def test() -> None:
        async with secured(monkeypatch) as (_, client):
            for method, path in PROTECTED:
                body = INFER if path.endswith("/infer") else {"a": 1}
                for headers, why in (
                    ({}, "this server needs an API key"),
                    ({"authorization": "Bearer nope"}, "the API key is wrong"),
                    ({"x-api-key": KEY[:-1]}, "the API key is wrong"),
                    ({"authorization": f"Basic {KEY}"}, "the API key is wrong"),
                ):
                    response = await client.request(method, path, json=body, headers=headers)
                    assert response.status_code == 401, (path, headers)
                    assert response.headers["www-authenticate"] == "Bearer"
                    assert response.json()["error"].startswith(why)
                    assert "Authorization: Bearer <key>" in response.json()["error"]
                    assert KEY not in response.text
            head = await client.head("/openapi.json")
            assert (head.status_code, head.content) == (401, b"")

    asyncio.run(test())


def test_the_key_works_as_bearer_token_or_x_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    async def test() -> None:
        async with secured(monkeypatch) as (_, client):
            for headers in (
                {"authorization": f"Bearer {KEY}"},
                {"authorization": f"bearer  {KEY} "},
                {"x-api-key": KEY},
                {"authorization": "Bearer wrong", "x-api-key": KEY},
            ):
                response = await client.post("/v1/models/secured:predict", json={"a": 1}, headers=headers)
                assert (response.status_code, response.json()) == (200, {"a": 1}), headers
            infer = await client.post("/v2/models/secured/infer", json=INFER, headers={"x-api-key": KEY})
            assert infer.status_code == 200
            doc = await client.get("/openapi.json", headers={"x-api-key": KEY})
            assert set(doc.json()["components"]["securitySchemes"]) == {"bearer", "apiKey"}
            assert doc.json()["paths"]["/"]["get"]["security"] == []

    asyncio.run(test())


def test_refusals_are_counted_and_no_key_is_ever_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-guess-9876"

    async def test() -> None:
        async with secured(monkeypatch) as (_, client):
            for headers in ({}, {"authorization": f"Bearer {wrong}"}, {"x-api-key": wrong}):
                await client.post("/v1/models/secured:predict", json={}, headers=headers)
            await client.post("/v1/models/secured:predict", json={}, headers={"x-api-key": KEY})
            metrics = (await client.get("/metrics")).text
            assert 'packager_requests_total{model="secured",status="401"} 3.0' in metrics

    asyncio.run(test())
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert KEY not in logged
    assert wrong not in logged


def test_a_key_secret_without_a_value_fails_when_the_app_is_built(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PACKAGER_SECRET_API_KEY", raising=False)
    monkeypatch.setenv("PACKAGER_SECRETS_DIR", str(tmp_path))
    with pytest.raises(SecretError, match="PACKAGER_SECRET_API_KEY"):
        create_app(Pipeline(read_package(FIXTURES / "secured")))
    (tmp_path / "api_key").write_text(KEY + "\n")  # a mounted secret file works too
    assert create_app(Pipeline(read_package(FIXTURES / "secured"))).name == "secured"


def test_the_key_secret_must_be_declared(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(
        "class Model:\n    def predict(self, inputs):\n        return inputs\n"
    )
    (tmp_path / "package.yaml").write_text(
        "spec_version: 1\nname: x\nsecrets: [hf_token]\nruntime:\n  api_key_secret: api_key\n"
    )
    with pytest.raises(
        SpecError, match=r"runtime: api_key_secret 'api_key' is not a declared secret; add '- api_key'"
    ):
        read_package(tmp_path)
