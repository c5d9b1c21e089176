"""KServe V2 details a KServe user or a load balancer runs into: ids, 422s, metadata, /v2, OpenAPI."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from packager import __version__
from packager._pipeline import Pipeline
from packager._server import create_app
from packager._spec_load import read_package

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "serving"


@contextlib.asynccontextmanager
async def client_for(name: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Pipeline(read_package(FIXTURES / name)))
    await app.startup()
    await app.wait_loaded()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
            yield client
    finally:
        await app.shutdown()


def infer(name: str, body: dict[str, Any]) -> httpx.Response:
    async def call() -> httpx.Response:
        async with client_for(name) as client:
            return await client.post(f"/v2/models/{name}/infer", json=body)

    return asyncio.run(call())


def tensor(name: str, shape: list[int], datatype: str, data: Any = None) -> dict[str, Any]:
    out = {"name": name, "shape": shape, "datatype": datatype}
    if data is not None:
        out["data"] = data
    return out


def test_the_request_id_is_echoed() -> None:
    response = infer("echo", {"id": "req-7", "inputs": [tensor("x", [1], "INT32", [3])]})
    assert response.status_code == 200
    assert response.json()["id"] == "req-7"
    assert "id" not in infer("echo", {"inputs": [tensor("x", [1], "INT32", [3])]}).json()
    assert infer("echo", {"id": 7, "inputs": [tensor("x", [1], "INT32", [3])]}).status_code == 400


@pytest.mark.parametrize(
    ("inputs", "loc", "message"),
    [
        ([tensor("x", [2], "FP32")], ["inputs", 0, "data"], "tensor 'x' has no 'data'"),
        (
            [tensor("x", [1], "FP32", [1]), tensor("x", [1], "FP32", [2])],
            ["inputs", 1, "name"],
            "two input tensors are named 'x'",
        ),
        (
            [tensor("h", [2], "FP16", [1.0, 70000.0])],
            ["inputs", 0, "data"],
            "beyond FP16's range (largest: 65504)",
        ),
        ([tensor("i", [1], "INT8", [300])], ["inputs", 0, "data"], "tensor 'i'"),
    ],
)
@pytest.mark.parametrize("model", ["echo", "typed"])
def test_tensors_without_data_twice_named_or_out_of_range_are_422(
    model: str, inputs: list[dict[str, Any]], loc: list[Any], message: str
) -> None:
    response = infer(model, {"inputs": inputs})
    assert response.status_code == 422, response.text
    body = response.json()
    assert message in body["error"]
    assert body["errors"][0]["loc"] == loc


def test_fp16_within_range_is_accepted() -> None:
    response = infer("echo", {"inputs": [tensor("h", [2], "FP16", [1.5, 65504.0])]})
    assert response.status_code == 200
    assert response.json()["outputs"][0] == {
        "name": "h",
        "shape": [2],
        "datatype": "FP16",
        "data": [1.5, 65504.0],
    }


def test_one_element_tensors_fill_scalar_fields_of_a_typed_model() -> None:
    inputs = [
        tensor("text", [1], "BYTES", ["hi"]),
        tensor("repeat", [1], "INT64", [2]),
        tensor("tags", [2], "BYTES", ["a", "b"]),
        tensor("scale", [], "FP64", 0.5),
    ]
    response = infer("typed", {"inputs": inputs})
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["text"]["data"] == ["hi hi"]
    assert outputs["length"]["data"] == [5]
    listed = infer("typed", {"inputs": [tensor("text", [2], "BYTES", ["a", "b"])]})
    assert listed.status_code == 422  # two values are not one string


def test_metadata_lists_the_typed_tensors_and_v2_answers_server_metadata() -> None:
    async def test() -> None:
        async with client_for("typed") as client:
            meta = (await client.get("/v2/models/typed")).json()
            assert meta["name"] == "typed"
            assert meta["inputs"] == [
                {"name": "text", "datatype": "BYTES", "shape": [1]},
                {"name": "repeat", "datatype": "INT64", "shape": [1]},
                {"name": "tags", "datatype": "BYTES", "shape": [-1]},
                {"name": "scale", "datatype": "FP64", "shape": [1]},
            ]
            assert meta["outputs"] == [
                {"name": "text", "datatype": "BYTES", "shape": [1]},
                {"name": "length", "datatype": "INT64", "shape": [1]},
            ]
            server = await client.get("/v2")
            assert server.json() == {"name": "packager", "version": __version__, "extensions": []}
        async with client_for("echo") as client:
            untyped = (await client.get("/v2/models/echo")).json()
            assert (untyped["inputs"], untyped["outputs"]) == ([], [])

    asyncio.run(test())


def test_openapi_lists_the_v2_paths() -> None:
    async def test() -> None:
        async with client_for("typed") as client:
            doc = (await client.get("/openapi.json")).json()
            for path in (
                "/v2",
                "/v2/health/live",
                "/v2/health/ready",
                "/v2/models/typed",
                "/v2/models/typed/ready",
            ):
                assert "get" in doc["paths"][path], path
            infer_op = doc["paths"]["/v2/models/typed/infer"]["post"]
            request = infer_op["requestBody"]["content"]["application/json"]["schema"]
            assert request == {"$ref": "#/components/schemas/V2InferRequest"}
            assert {"V2Tensor", "V2InferRequest", "V2InferResponse"} <= set(doc["components"]["schemas"])
            assert {"200", "400", "415", "422"} <= set(infer_op["responses"])
            assert "securitySchemes" not in doc["components"]

    asyncio.run(test())


def test_an_output_tensor_holding_nan_is_a_500_naming_it(tmp_path: Path) -> None:
    (tmp_path / "package.yaml").write_text("spec_version: 1\nname: nanny\n")
    (tmp_path / "model.py").write_text(
        "import numpy as np\n\nclass Model:\n    def predict(self, inputs):\n"
        "        return {'y': np.array([1.0, np.nan])}\n"
    )

    async def test() -> None:
        app = create_app(Pipeline(read_package(tmp_path)))
        await app.startup()
        await app.wait_loaded()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                body = {"inputs": [tensor("x", [1], "FP32", [1])]}
                response = await client.post("/v2/models/nanny/infer", json=body)
                assert response.status_code == 500
                assert "output tensor 'y' holds nan at index [1]" in response.json()["error"]
        finally:
            await app.shutdown()

    asyncio.run(test())
