"""Outputs are checked against the model's own return annotations (issue 7, item 7)."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

import packager
from packager import PredictError
from packager._pipeline import Pipeline
from packager._server import create_app
from packager._spec_load import read_package

SPEC = "spec_version: 1\nname: m\n"
HEADER = """\
from __future__ import annotations
from typing import Any, AsyncIterator, Iterator
from pydantic import BaseModel

class Reply(BaseModel):
    text: str
    score: float = 0.0

"""


def package(tmp_path: Path, source: str, spec: str = SPEC) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "package.yaml").write_text(spec)
    (tmp_path / "model.py").write_text(HEADER + textwrap.dedent(source))
    return tmp_path


def predict_error(handle: packager.ModelHandle, inputs: Any) -> str:
    def run() -> Any:
        result = handle.predict(inputs)
        return list(result) if hasattr(result, "__next__") else result

    with pytest.raises(PredictError) as caught:
        run()
    return str(caught.value)


def test_an_output_breaking_the_annotation_is_a_predict_error_naming_the_field(tmp_path: Path) -> None:
    handle = packager.load(
        package(
            tmp_path,
            """
            class Model:
                def predict(self, inputs) -> Reply:
                    return inputs
            """,
        )
    )
    message = predict_error(handle, {"score": "high"})
    assert message == (
        "predict returned an output that does not match its annotation Reply: "
        "field 'text': Field required; field 'score': Input should be a valid number, "
        "unable to parse string as a number; fix predict or its return annotation"
    )
    assert predict_error(handle, 5).startswith(
        "predict returned an output that does not match its annotation Reply: Input should be"
    )


def test_the_validated_output_is_what_goes_out_and_the_schema_describes_it(tmp_path: Path) -> None:
    handle = packager.load(
        package(
            tmp_path,
            """
            class Model:
                def predict(self, inputs) -> dict[str, float]:
                    return inputs
            """,
        )
    )
    assert handle.predict({"a": 1}) == {"a": 1.0}
    assert isinstance(handle.predict({"a": 1})["a"], float)
    assert handle.schema()["output"] == {"additionalProperties": {"type": "number"}, "type": "object"}
    source = "class Model:\n    def predict(self, inputs) -> Reply:\n        return inputs\n"
    as_model = packager.load(package(tmp_path / "b", source))
    out = as_model.predict({"text": "hi", "extra": 1})
    assert type(out).__name__ == "Reply"
    assert out.model_dump() == {"text": "hi", "score": 0.0}


def test_a_model_instance_returned_as_is_is_not_copied(tmp_path: Path) -> None:
    handle = packager.load(
        package(
            tmp_path,
            """
            class Model:
                def load(self):
                    self.reply = Reply(text="same")
                def predict(self, inputs) -> Reply:
                    return self.reply
            """,
        )
    )
    assert handle.predict(None) is handle.model.reply


def test_unannotated_and_any_outputs_are_not_checked(tmp_path: Path) -> None:
    marker = object()
    for i, annotation in enumerate(("", " -> Any")):
        source = f"class Model:\n    def predict(self, inputs){annotation}:\n        return inputs\n"
        handle = packager.load(package(tmp_path / str(i), source))
        assert handle.predict(marker) is marker


def test_postprocess_annotation_governs_the_output_and_predict_annotation_its_own(tmp_path: Path) -> None:
    handle = packager.load(
        package(
            tmp_path,
            """
            class Model:
                def predict(self, inputs) -> dict:
                    return inputs["predict"]
                def postprocess(self, outputs) -> Reply:
                    return outputs["post"]
            """,
        )
    )
    assert handle.schema()["output"]["title"] == "Reply"
    assert handle.predict({"predict": {"post": {"text": "ok"}}}).text == "ok"
    assert predict_error(handle, {"predict": [1]}).startswith(
        "predict returned an output that does not match its annotation dict: Input should be a valid dictionary"
    )
    assert predict_error(handle, {"predict": {"post": {"text": 3}}}) == (
        "postprocess returned an output that does not match its annotation Reply: "
        "field 'text': Input should be a valid string; fix postprocess or its return annotation"
    )


def test_each_chunk_of_a_stream_is_checked_and_the_generator_closed(tmp_path: Path) -> None:
    handle = packager.load(
        package(
            tmp_path,
            """
            closed = []
            class Model:
                def predict(self, inputs) -> Iterator[int]:
                    try:
                        yield from inputs
                    finally:
                        closed.append(True)
            """,
        )
    )
    assert list(handle.predict([1, "2"])) == [1, 2]
    chunks = handle.predict([1, "x", 3])
    assert next(chunks) == 1
    with pytest.raises(PredictError) as caught:
        next(chunks)
    assert str(caught.value) == (
        "predict yielded a chunk that does not match its annotation int: Input should be a valid integer, "
        "unable to parse string as an integer; fix predict or its return annotation"
    )
    assert type(handle.model).predict.__globals__["closed"] == [True, True]


def test_each_chunk_of_an_async_stream_is_checked(tmp_path: Path) -> None:
    handle = packager.load(
        package(
            tmp_path,
            """
            class Model:
                async def predict(self, inputs) -> AsyncIterator[Reply]:
                    for item in inputs:
                        yield item
            """,
        )
    )
    assert [c.text for c in handle.predict([{"text": "a"}])] == ["a"]
    assert "field 'text': Field required" in predict_error(handle, [{"text": "a"}, {}])


def test_a_stream_annotation_with_a_plain_return_is_reported(tmp_path: Path) -> None:
    handle = packager.load(
        package(
            tmp_path, "class Model:\n    def predict(self, inputs) -> Iterator[str]:\n        return ['a']\n"
        )
    )
    assert predict_error(handle, None) == (
        "predict is annotated as a stream of str but returned a list; "
        "yield the chunks, or annotate the whole output instead"
    )


BATCH_ONLY = """
class Model:
    def predict_batch(self, batch) -> list[int]:
        return batch
"""


def test_batch_outputs_are_checked_per_item(tmp_path: Path) -> None:
    handle = packager.load(package(tmp_path, BATCH_ONLY))
    assert handle.predict("7") == 7
    assert predict_error(handle, "x").startswith(
        "predict_batch returned an item that does not match its annotation int: Input should be a valid integer"
    )


def serve_once(root: Path, body: Any, *, path: str = ":predict") -> httpx.Response:
    async def go() -> httpx.Response:
        app = create_app(Pipeline(read_package(root)))
        await app.startup()
        await app.wait_loaded()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as client:
                return await client.post(f"/v1/models/m{path}", json=body)
        finally:
            await app.shutdown()

    return asyncio.run(go())


def test_the_server_answers_500_naming_the_field(tmp_path: Path) -> None:
    root = package(tmp_path, "class Model:\n    def predict(self, inputs) -> Reply:\n        return inputs\n")
    ok = serve_once(root, {"text": "hi", "extra": 1})
    assert (ok.status_code, ok.json()) == (200, {"text": "hi", "score": 0.0})
    bad = serve_once(root, {"score": 1})
    assert bad.status_code == 500
    assert "field 'text': Field required" in bad.json()["error"]
    assert "Traceback" not in bad.text


def test_the_server_checks_each_item_of_a_batch(tmp_path: Path) -> None:
    spec = SPEC + "runtime: {batching: {max_batch_size: 4, max_wait_ms: 1}}\n"
    root = package(tmp_path, BATCH_ONLY, spec)
    ok = serve_once(root, "3")
    assert (ok.status_code, ok.json()) == (200, 3)
    bad = serve_once(root, "three")
    assert bad.status_code == 500
    assert bad.json()["error"].startswith("predict_batch returned an item that does not match")


def test_the_server_checks_each_streamed_chunk(tmp_path: Path) -> None:
    root = package(
        tmp_path,
        "class Model:\n    def predict(self, inputs) -> Iterator[int]:\n        yield from inputs\n",
    )
    ok = serve_once(root, [1, "2"])
    assert (ok.status_code, ok.json()) == (200, [1, 2])
    bad = serve_once(root, [1, "x"])
    assert bad.status_code == 500
    assert bad.json()["error"].startswith("predict yielded a chunk that does not match its annotation int")
