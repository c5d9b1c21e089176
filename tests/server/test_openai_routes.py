"""The OpenAI-compatible routes' mechanics, on a fake LLM behind a real server and the real `openai` client."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from harness import FIXTURES, ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    folder = tmp_path_factory.mktemp("fake-llm")
    closed = folder / "closed.log"
    saved = dict(os.environ)
    os.environ.update(FAKE_LLM_LOG=str(closed), FAKE_LLM_DELAY_S="0.02")
    try:
        process = ServerProcess(FIXTURES / "fake_llm", folder / "server.log").wait_listening()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        yield process.wait_ready("fake-llm"), closed
    finally:
        process.stop()


@pytest.fixture
def client(server: tuple[ServerProcess, Path]) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server[0].url}/v1", api_key="unused", max_retries=0)


CHAT = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello big world"}]


def test_models_lists_kserve_and_openai(server: tuple[ServerProcess, Path], client: openai.OpenAI) -> None:
    body = httpx.get(f"{server[0].url}/v1/models").json()
    assert body["models"] == ["fake-llm"]
    assert [m.id for m in client.models.list()] == ["fake-llm"]


def test_chat_completion(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="fake-llm", messages=CHAT, max_tokens=4)  # type: ignore[arg-type]
    assert answer.object == "chat.completion"
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content == " hello big world hello"
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (
        5,
        4,
        9,
    )


def test_chat_stream_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="fake-llm",
        messages=CHAT,
        max_tokens=5,
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[arg-type]
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == " hello big world hello big"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "length"
    assert set(finishes[:-1]) == {None}
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5


def test_completion_with_stop(client: openai.OpenAI) -> None:
    answer = client.completions.create(
        model="fake-llm", prompt="one two three four", max_tokens=50, stop=[" three"]
    )
    assert answer.object == "text_completion"
    assert answer.choices[0].text == " one two"
    assert answer.choices[0].finish_reason == "stop"
    streamed = client.completions.create(
        model="fake-llm", prompt="one two three four", max_tokens=50, stop=" three", stream=True
    )
    pieces = list(streamed)
    assert "".join(p.choices[0].text for p in pieces) == " one two"
    assert pieces[-1].choices[0].finish_reason == "stop"


def test_sse_wire_format(server: tuple[ServerProcess, Path]) -> None:
    body = {"prompt": "a b", "max_tokens": 2, "stream": True}
    with httpx.stream("POST", f"{server[0].url}/v1/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in events)
    assert events[-1] == "data: [DONE]"
    assert len(events) == 3


def test_bad_requests_are_422_naming_the_field(client: openai.OpenAI) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as info:
        client.chat.completions.create(model="fake-llm", messages=CHAT, n=2)  # type: ignore[arg-type]
    assert info.value.message.startswith("Error code: 422 - ")
    assert info.value.body == {  # OpenAI's error object: what the client reads (`.body`, `.param`)
        "message": "n: only n=1 is supported",
        "type": "invalid_request_error",
        "param": "n",
        "code": 422,
    }
    assert info.value.param == "n"
    with pytest.raises(openai.UnprocessableEntityError) as info:
        client.completions.create(model="fake-llm", prompt="x", temperature=5)
    assert isinstance(info.value.body, dict)
    assert info.value.body["message"].startswith("input is invalid: temperature:")
    assert info.value.body["param"] == "temperature"


def test_kserve_predict_is_the_same_pipeline(server: tuple[ServerProcess, Path]) -> None:
    answer = httpx.post(
        f"{server[0].url}/v1/models/fake-llm:predict", json={"prompt": "x y", "max_tokens": 3}
    )
    assert answer.json() == {
        "text": " x y x",
        "finish_reason": "length",
        "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5},
    }


def test_disconnect_mid_stream_stops_generation(
    server: tuple[ServerProcess, Path], client: openai.OpenAI
) -> None:
    closed = server[1]
    closed.unlink(missing_ok=True)
    stream = client.completions.create(model="fake-llm", prompt="tick tock", max_tokens=5000, stream=True)
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()  # hangs up: 5000 tokens at 20 ms each would take 100 s
    deadline = time.monotonic() + 20
    while not closed.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    made = int(closed.read_text().split()[-1])
    assert 4 <= made < 1000


def test_routes_absent_without_runtime_openai(tmp_path: Path) -> None:
    process = ServerProcess(FIXTURES / "echo", tmp_path / "echo.log").wait_listening()
    try:
        process.wait_ready("echo")
        response = httpx.post(f"{process.url}/v1/chat/completions", json={"messages": CHAT})
        assert response.status_code == 404
    finally:
        process.stop()
