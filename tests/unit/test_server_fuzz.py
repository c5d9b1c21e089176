"""Fuzz the predict endpoint of a typed model: thousands of generated bodies, never a 5xx.

Bodies are arbitrary JSON documents, near-miss inputs for the model's
pydantic type, msgpack documents and raw bytes, sent with assorted content
types. Every answer must be 200 (with the right output), 400 or 422, and
always a JSON body; the server must keep serving afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgpack
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from packager._pipeline import Pipeline
from packager._server import create_app
from packager._server._app import App
from packager._spec_load import read_package

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "serving"
URL = "/v1/models/typed:predict"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=50),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
near_miss = st.fixed_dictionaries(
    {},
    optional={
        "text": st.one_of(st.text(max_size=1200), json_values),
        "repeat": st.one_of(st.integers(min_value=-3, max_value=8), json_values),
        "tags": st.one_of(st.lists(st.text(max_size=5), max_size=12), json_values),
        "scale": st.one_of(st.floats(allow_nan=False, allow_infinity=False), json_values),
        "extra": json_values,
    },
)
content_types = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/plain", "", "application/octet-stream"]
)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    kind = draw(st.sampled_from(["json", "near", "msgpack", "bytes", "text"]))
    if kind == "json":
        return orjson.dumps(draw(json_values)), draw(content_types)
    if kind == "near":
        return orjson.dumps(draw(near_miss)), draw(content_types)
    if kind == "msgpack":
        value = draw(st.one_of(near_miss, json_values))
        return msgpack.packb(value), "application/msgpack"
    if kind == "bytes":
        return draw(st.binary(max_size=200)), draw(
            st.sampled_from(["application/json", "application/msgpack"])
        )
    return draw(st.text(max_size=200)).encode(), draw(content_types)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[asyncio.AbstractEventLoop, App, httpx.AsyncClient]]:
    loop = asyncio.new_event_loop()
    app = create_app(Pipeline(read_package(FIXTURES / "typed")), max_body_bytes=64 * 1024)
    loop.run_until_complete(app.startup())
    loop.run_until_complete(app.wait_loaded())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    yield loop, app, client
    loop.run_until_complete(client.aclose())
    loop.run_until_complete(app.shutdown())
    loop.close()


def expected(value: Any) -> Any:
    """The typed model's answer for a valid input, else None."""
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        return None
    repeat = value.get("repeat", 1)
    if type(repeat) is not int or not 1 <= repeat <= 5 or len(value["text"]) > 1000:
        return None
    text = " ".join([value["text"]] * repeat)
    return {"text": text, "length": len(text)}


@settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=bodies())
def test_generated_bodies_never_cause_a_server_error(
    served: tuple[asyncio.AbstractEventLoop, App, httpx.AsyncClient], case: tuple[bytes, str]
) -> None:
    loop, _, client = served
    body, content_type = case
    headers = {"content-type": content_type} if content_type else {}
    response = loop.run_until_complete(client.post(URL, content=body, headers=headers))
    assert response.status_code in (200, 400, 422), (response.status_code, response.text)
    packed = response.headers["content-type"] == "application/msgpack"
    answer = msgpack.unpackb(response.content) if packed else response.json()
    if response.status_code == 200:
        assert set(answer) == {"text", "length"}
        assert answer["length"] == len(answer["text"])
    else:
        assert not packed
        assert isinstance(answer["error"], str)
        assert answer["request_id"] == response.headers["x-request-id"]


def test_valid_inputs_get_the_models_answer(
    served: tuple[asyncio.AbstractEventLoop, App, httpx.AsyncClient],
) -> None:
    loop, app, client = served
    for value in ({"text": "a"}, {"text": "ab", "repeat": 3, "tags": ["x"], "scale": 0.5}):
        response = loop.run_until_complete(client.post(URL, json=value))
        assert response.json() == expected(value)
    assert not [status for status in app.metrics.statuses if status >= 500]
