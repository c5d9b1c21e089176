"""The OpenAPI document served at `/openapi.json` (`/schema` serves `Pipeline.schema()`).

Both come from the model's input and output annotations (the same pydantic
adapters that validate requests), so the documented contract is the enforced one.
"""

from __future__ import annotations

from typing import Any

from packager._pipeline import Pipeline
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
    "413": "The body is larger than the server accepts.",
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
    return {
        "openapi": "3.1.0",
        "info": {"title": name, "version": __version__, "description": pipeline.spec.description},
        "paths": {
            f"/v1/models/{name}:predict": {"post": _predict_operation(pipeline, inputs, outputs)},
            f"/v1/models/{name}": {"get": _get("Readiness: 200 once loaded and healthy, else 503.")},
            f"/v1/models/{name}/schema": {"get": _get("Input and output JSON Schemas.")},
            "/v1/models": {"get": _get("The models this server serves.")},
            "/": {"get": _get("Liveness: 200 while the process serves.")},
            "/metrics": {"get": _get("Prometheus metrics.", "text/plain")},
        },
        "components": {"schemas": components},
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
    responses: dict[str, Any] = {"200": {"description": "The model's output.", "content": content}}
    for status, description in _ERRORS.items():
        error = {"schema": {"$ref": _REF.format(model="Error")}}
        responses[status] = {"description": description, "content": {"application/json": error}}
    return {
        "summary": f"Run {pipeline.spec.name}",
        "operationId": "predict",
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inputs}, "application/msgpack": {"schema": inputs}},
        },
        "responses": responses,
    }


def _get(summary: str, content_type: str = "application/json") -> dict[str, Any]:
    return {"summary": summary, "responses": {"200": {"description": "OK", "content": {content_type: {}}}}}
