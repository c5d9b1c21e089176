"""packager.load(): one pipeline, loaded once, usable from scripts, event loops and async code."""

from __future__ import annotations

import asyncio
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import packager
from packager import InputError, PredictError, SecretError
from packager._pipeline import detect_device

FIXTURES = Path(__file__).parent.parent / "fixtures" / "packages"


@pytest.fixture(scope="module")
def typed() -> Iterator[packager.ModelHandle]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TYPED_FIXTURE_KEPT", "from-user")
        patch.setenv("TYPED_FIXTURE_MODE", "recorded so that undo removes it")
        patch.delenv("TYPED_FIXTURE_MODE")
        yield packager.load(FIXTURES / "typed", device="cpu", weights_dir="/tmp/packager-test-weights")


def test_spec_environment_is_applied_but_the_callers_values_win(typed: packager.ModelHandle) -> None:
    assert typed.model.environment == {"TYPED_FIXTURE_MODE": "from-spec", "TYPED_FIXTURE_KEPT": "from-user"}


def test_stages_run_in_order_and_model_loads_once(typed: packager.ModelHandle) -> None:
    out = typed.predict({"text": "hi", "times": 2})
    assert out.text == "HIHI!"
    assert out.stages == ["preprocess", "predict", "postprocess"]
    typed.predict({"text": "x"})
    assert typed.model.loads == 1


def test_example_matches_its_expected_output(typed: packager.ModelHandle) -> None:
    example = typed.spec.example("shout")
    assert example is not None
    assert typed.predict(typed.example("shout")).model_dump() == example.output


def test_unknown_example_lists_known_ones(typed: packager.ModelHandle) -> None:
    with pytest.raises(
        packager.PackagerError, match=r"^no example named 'nope' in package.yaml \(examples: shout\)$"
    ):
        typed.example("nope")


def test_typed_input_is_validated_with_every_field_error(typed: packager.ModelHandle) -> None:
    with pytest.raises(InputError) as info:
        typed.predict({"times": 11})
    assert (
        str(info.value)
        == "input is invalid: text: Field required; times: Input should be less than or equal to 10"
    )
    assert info.value.errors == [
        {"loc": ["text"], "msg": "Field required", "type": "missing"},
        {"loc": ["times"], "msg": "Input should be less than or equal to 10", "type": "less_than_equal"},
    ]
    assert info.value.status_code == 422


def test_init_receives_what_it_asks_for(typed: packager.ModelHandle) -> None:
    injected = typed.model.injected
    root = (FIXTURES / "typed").resolve()
    assert injected["config"]["name"] == "typed"
    assert injected["config"]["model"] == {"file": "model.py", "class": "Model"}
    assert injected["spec"] is typed.spec
    assert injected["data_dir"] == root / "data"
    assert injected["device"] == "cpu"
    assert injected["weights_dir"] == Path("/tmp/packager-test-weights")
    assert injected["weights"] == {
        "local-data": root / "data",
        "repo": Path("/tmp/packager-test-weights/repo"),
    }


def test_schema_describes_typed_input_and_output(typed: packager.ModelHandle) -> None:
    schema = typed.schema()
    assert schema["input"]["required"] == ["text"]
    assert schema["input"]["properties"]["times"]["maximum"] == 10
    assert schema["output"]["title"] == "Response"
    assert (schema["streaming"], schema["batching"]) == (False, False)


def test_predict_works_inside_a_running_event_loop(typed: packager.ModelHandle) -> None:
    async def cell() -> tuple[str, str]:
        sync_out = typed.predict({"text": "a"})  # as in a Jupyter cell: a loop is already running
        async_out = await typed.apredict({"text": "b"})
        return sync_out.text, async_out.text

    assert asyncio.run(cell()) == ("A!", "B!")


def test_async_model_works_from_plain_code_and_from_a_loop() -> None:
    handle = packager.load(FIXTURES / "async_model")
    assert handle.model.loop_name == "loaded"
    assert handle.predict({"values": [1, 2, 3]}) == {"sum": 6}

    async def cell() -> tuple[object, object]:
        return handle.predict({"values": [4]}), await handle.apredict({"values": [5]})

    assert asyncio.run(cell()) == ({"sum": 4}, {"sum": 5})


def test_async_generator_streams_from_sync_and_async_callers() -> None:
    handle = packager.load(FIXTURES / "async_model")
    chunks = handle.predict({"stream": True, "n": 3})
    assert isinstance(chunks, types.GeneratorType)
    assert list(chunks) == [0, 1, 2]

    async def consume() -> list[int]:
        stream = await handle.apredict({"stream": True, "n": 4})
        return [chunk async for chunk in stream]

    assert asyncio.run(consume()) == [0, 1, 2, 3]


def test_sync_generator_streams_and_is_closed_when_abandoned() -> None:
    handle = packager.load(FIXTURES / "streaming")
    assert handle.streams
    assert handle.schema()["output"] == {"type": "string"}
    assert "".join(handle.predict({"n": 3})) == "tok0 tok1 tok2 "
    model_cls = type(handle.model)
    model_cls.closed = False
    stream = handle.predict({"n": 100})
    assert next(stream) == "tok0 "
    stream.close()
    assert model_cls.closed


def test_async_stream_closes_model_generator_when_consumer_stops() -> None:
    handle = packager.load(FIXTURES / "streaming")
    model_cls = type(handle.model)

    async def take_one() -> str:
        stream = await handle.apredict({"n": 100})
        first = await stream.__anext__()
        await stream.aclose()
        return str(first)

    model_cls.closed = False
    assert asyncio.run(take_one()) == "tok0 "
    # A sync generator is closed by the predict thread that owns it, right after aclose() lets it go.
    deadline = time.monotonic() + 10
    while not model_cls.closed and time.monotonic() < deadline:
        time.sleep(0.005)
    assert model_cls.closed


def test_error_inside_stream_is_a_predict_error() -> None:
    handle = packager.load(FIXTURES / "streaming")
    stream = handle.predict({"n": 5, "fail_at": 2})
    assert [next(stream), next(stream)] == ["tok0 ", "tok1 "]
    with pytest.raises(PredictError, match=r"^predict raised RuntimeError: boom at 2$"):
        next(stream)


def test_batch_only_model_predicts_single_inputs_as_batches_of_one() -> None:
    handle = packager.load(FIXTURES / "batch_only")
    assert handle.predict(4) == 40
    assert handle.model.batches == [1]
    assert handle.schema()["batching"] is True
    assert handle.schema()["input"] == {"type": "integer"}
    with pytest.raises(InputError):
        handle.predict("four")


def test_model_exception_becomes_predict_error_and_next_call_works() -> None:
    handle = packager.load(FIXTURES / "failing")
    with pytest.raises(PredictError, match=r"^predict raised ValueError: model exploded$") as info:
        handle.predict("crash")
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(InputError, match=r"^inputs must not be 'bad-input'$"):
        handle.predict("bad-input")
    assert handle.predict("fine") == "fine"


def test_secrets_come_from_env_or_directory_and_never_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PACKAGER_SECRET_API_KEY", "s3cr3t-value")
    (tmp_path / "hf.token").write_text("tok-from-file\n")
    monkeypatch.setenv("PACKAGER_SECRETS_DIR", str(tmp_path))
    handle = packager.load(FIXTURES / "secret_user")
    secrets = handle.model.secrets
    assert handle.predict({}) == {"key_length": len("s3cr3t-value")}
    assert secrets["hf.token"] == "tok-from-file"
    assert repr(secrets) == str(secrets) == "Secrets(['api_key', 'hf.token'])"
    assert "s3cr3t" not in repr(handle) + repr(handle.model.__dict__)
    with pytest.raises(KeyError, match=r"secret 'other' is not declared in package\.yaml"):
        secrets["other"]


def test_missing_secrets_are_all_named_with_where_they_were_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PACKAGER_SECRET_API_KEY", raising=False)
    monkeypatch.delenv("PACKAGER_SECRET_HF_TOKEN", raising=False)
    monkeypatch.setenv("PACKAGER_SECRETS_DIR", str(tmp_path))
    with pytest.raises(SecretError) as info:
        packager.load(FIXTURES / "secret_user")
    assert str(info.value) == (
        f"missing secrets: 'api_key': set $PACKAGER_SECRET_API_KEY or write the file {tmp_path}/api_key; "
        f"'hf.token': set $PACKAGER_SECRET_HF_TOKEN or write the file {tmp_path}/hf.token"
    )


def test_secrets_passed_directly_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACKAGER_SECRETS_DIR", str(tmp_path))
    handle = packager.load(FIXTURES / "secret_user", secrets={"api_key": "abc", "hf.token": "t"})
    assert handle.predict({}) == {"key_length": 3}


def test_device_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACKAGER_DEVICE", "mps")
    assert detect_device() == "mps"
    monkeypatch.delenv("PACKAGER_DEVICE")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert detect_device() == "cpu"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert detect_device() == ("cuda" if Path("/dev/nvidia0").exists() else "cpu")


def test_batch_only_model_returning_the_wrong_number_of_outputs(tmp_path: Path) -> None:
    (tmp_path / "package.yaml").write_text("spec_version: 1\nname: short\n")
    (tmp_path / "model.py").write_text(
        "class Model:\n    def predict_batch(self, batch):\n        return []\n"
    )
    with pytest.raises(PredictError) as info:
        packager.load(tmp_path).predict(1)
    assert str(info.value) == (
        "predict_batch returned 0 outputs for a batch of 1 inputs; "
        "it must return a list with one output per input, in order"
    )
