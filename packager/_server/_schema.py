"""The OpenAPI document served at `/openapi.json` (`/schema` serves `Pipeline.schema()`).

Both come from the model's input and output annotations (the same pydantic
adapters that validate requests), so the documented contract is the enforced one.
"""

from __future__ import annotations

from typing import Any

from packager._pipeline import Pipeline
from packager._server._v2_meta import INFER_REQUEST, INFER_RESPONSE, TENSOR_SCHEMA
from packager._version import __version__

_REF = "#/components/schemas/{model}"
_ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array"},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "required": ["error"],
}
_ERRORS = {
    "400": "The body is not valid JSON or msgpack.",
    "404": "No model by that name.",
    "408": "The body did not arrive within PACKAGER_BODY_TIMEOUT_S.",
    "413": "The body is larger than the server accepts.",
    "415": "The body is compressed (Content-Encoding); send it uncompressed.",
    "422": "The input failed validation; `errors` lists each field problem.",
    "429": "Too many requests are waiting; retry after Retry-After seconds.",
    "500": "The model raised; the server log has the traceback.",
    "503": "The model is still loading (or failed to).",
    "504": "The request ran past runtime.request_timeout_s.",
}


def openapi(pipeline: Pipeline) -> dict[str, Any]:
    """An OpenAPI 3.1 document for this server's endpoints."""
    name = pipeline.spec.name
    components: dict[str, Any] = {"Error": _ERROR}
    contract = pipeline.contract
    inputs = _adapter_schema(contract.input_adapter, "validation", components)
    outputs = _adapter_schema(contract.output_adapter, "serialization", components)
    components.update(V2Tensor=TENSOR_SCHEMA, V2InferRequest=INFER_REQUEST, V2InferResponse=INFER_RESPONSE)
    ready = "Readiness: 200 once loaded and healthy, else 503."
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": name, "version": __version__, "description": pipeline.spec.description},
        "paths": {
            f"/v1/models/{name}:predict": {"post": _predict_operation(pipeline, inputs, outputs)},
            f"/v1/models/{name}": {"get": _get(ready, public=True)},
            f"/v1/models/{name}/schema": {"get": _get("Input and output JSON Schemas.")},
            "/v1/models": {"get": _get("The models this server serves.")},
            "/": {"get": _get("Liveness: 200 while the process serves.", public=True)},
            "/metrics": {"get": _get("Prometheus metrics.", "text/plain", public=True)},
            "/v2": {"get": _get("KServe V2 server metadata: name, version, extensions.")},
            "/v2/health/live": {"get": _get("KServe V2 liveness.", public=True)},
            "/v2/health/ready": {"get": _get("KServe V2 readiness.", public=True)},
            f"/v2/models/{name}": {
                "get": _get("KServe V2 model metadata: the typed input and output tensors.")
            },
            f"/v2/models/{name}/ready": {"get": _get("KServe V2 model readiness.", public=True)},
            f"/v2/models/{name}/infer": {"post": _infer_operation(name)},
        },
        "components": {"schemas": components},
    }
    if pipeline.spec.runtime.api_key_secret is not None:
        doc["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        doc["security"] = [{"bearer": []}, {"apiKey": []}]
        doc["paths"][f"/v1/models/{name}:predict"]["post"]["responses"]["401"] = _error(
            "No API key, or a wrong one (runtime.api_key_secret)."
        )
    return doc


def _infer_operation(name: str) -> dict[str, Any]:
    request = {"application/json": {"schema": {"$ref": _REF.format(model="V2InferRequest")}}}
    answer = {"application/json": {"schema": {"$ref": _REF.format(model="V2InferResponse")}}}
    responses = _responses("The output tensors.", answer)
    return {
        "summary": f"Run {name} on KServe V2 tensors",
        "operationId": "infer",
        "requestBody": {"required": True, "content": request},
        "responses": responses,
    }


def _responses(description: str, content: dict[str, Any]) -> dict[str, Any]:
    """A predict operation's responses: 200 with `content`, then every error status."""
    responses: dict[str, Any] = {"200": {"description": description, "content": content}}
    for status, error in _ERRORS.items():
        responses[status] = _error(error)
    return responses


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
    }


def _adapter_schema(adapter: Any, mode: str, components: dict[str, Any]) -> dict[str, Any]:
    if adapter is None:
        return {}
    schema: dict[str, Any] = adapter.json_schema(mode=mode, ref_template=_REF)
    components.update(schema.pop("$defs", {}))
    return schema


def _predict_operation(pipeline: Pipeline, inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = {
        "application/json": {"schema": outputs},
        "application/msgpack": {"schema": outputs},
    }
    if pipeline.streams:
        content = {
            "text/event-stream": {"schema": {"type": "string", "description": "`data: <chunk JSON>` events"}},
            "application/json": {
                "schema": {"description": "The chunks joined: text concatenated, else a list."}
            },
        }
    responses = _responses("The model's output.", content)
    return {
        "summary": f"Run {pipeline.spec.name}",
        "operationId": "predict",
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inputs}, "application/msgpack": {"schema": inputs}},
        },
        "responses": responses,
    }


def _get(summary: str, content_type: str = "application/json", *, public: bool = False) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {"200": {"description": "OK", "content": {content_type: {}}}},
    }
    if public:
        operation["security"] = []  # probes and scrapers need no API key
    return operation
