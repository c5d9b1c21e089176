"""packager.load(): one pipeline, loaded once, usable from scripts, event loops and async code."""

from __future__ import annotations

import asyncio
import shutil
import sys
import threading
import time
import types
import warnings
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

import packager
from packager import InputError, PredictError, SecretError, _device
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


def test_a_secret_only_for_build_weights_is_optional_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "model.py").write_text(
        "class Model:\n"
        "    def __init__(self, secrets):\n"
        "        self.secrets = secrets\n"
        "    def predict(self, inputs):\n"
        "        return self.secrets[inputs]\n"
    )
    (root / "package.yaml").write_text(
        "spec_version: 1\nname: build-token\nsecrets: [store, api_key]\n"
        "weights:\n"
        "  - {source: 'https://weights.invalid/a.bin', secret: store, fetch: build}\n"
    )
    monkeypatch.setenv("PACKAGER_SECRETS_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("PACKAGER_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.delenv("PACKAGER_SECRET_STORE", raising=False)
    monkeypatch.delenv("PACKAGER_SECRET_API_KEY", raising=False)
    with pytest.raises(SecretError, match=r"^missing secret: 'api_key'"):  # still required
        packager.load(root)
    monkeypatch.setenv("PACKAGER_SECRET_API_KEY", "k")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unbaked fetch: build source warns
        handle = packager.load(root)
    assert handle.predict("api_key") == "k"
    with pytest.raises(PredictError, match=r"secret 'store' was not given \(it is declared for weights"):
        handle.predict("store")


def test_secrets_passed_directly_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACKAGER_SECRETS_DIR", str(tmp_path))
    handle = packager.load(FIXTURES / "secret_user", secrets={"api_key": "abc", "hf.token": "t"})
    assert handle.predict({}) == {"key_length": 3}


def test_device_detection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # read device files, not torch
    monkeypatch.setattr(_device, "DEVICE_FILES", str(tmp_path / "nvidia[0-9]*"))
    monkeypatch.delenv("PACKAGER_DEVICE", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert detect_device() == "cpu"
    (tmp_path / "nvidia0").touch()
    (tmp_path / "nvidia1").touch()
    assert (detect_device(), _device.visible_gpus()) == ("cuda", 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert _device.visible_gpus() == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,7,1")  # CUDA stops at the first invalid index
    assert _device.visible_gpus() == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert detect_device() == "cpu"
    monkeypatch.setenv("PACKAGER_DEVICE", "cpu")
    assert detect_device() == "cpu"


@pytest.mark.parametrize(
    "value", ["gpu", "CUDA", "cuda:", "cuda:-1", "cuda:01", "cuda:x", "cpu:0", "tpu", ""]
)
def test_device_values_other_than_cpu_cuda_and_mps_are_refused(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(packager.PackagerError) as info:
        packager.load(FIXTURES / "typed", device=value)
    assert (
        str(info.value) == f"device: {value!r} is not a device; use cpu, cuda, cuda:N (N = 0, 1, ...) or mps"
    )
    monkeypatch.setenv("PACKAGER_DEVICE", value or "  ")
    if value:
        with pytest.raises(packager.PackagerError, match=r"^\$PACKAGER_DEVICE: .* is not a device; use cpu"):
            packager.load(FIXTURES / "typed")


def no_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(_device, "DEVICE_FILES", str(tmp_path / "nvidia[0-9]*"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # also keeps torch from being asked


def test_asking_for_cuda_without_a_visible_gpu_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    no_gpu(monkeypatch, tmp_path)
    with pytest.raises(packager.PackagerError) as info:
        packager.load(FIXTURES / "typed", device="cuda")
    assert str(info.value) == (
        "device: 'cuda' asked for, but no GPU is visible to this process "
        "(CUDA_VISIBLE_DEVICES='-1' hides every GPU); use cpu, or run where a GPU is visible"
    )
    monkeypatch.setenv("PACKAGER_DEVICE", "cuda:0")
    with pytest.raises(packager.PackagerError, match=r"^\$PACKAGER_DEVICE: 'cuda:0' asked for, but no GPU"):
        packager.load(FIXTURES / "typed")
    monkeypatch.delenv("PACKAGER_DEVICE")
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(
        packager.PackagerError, match=r"^device: 'mps' needs a Mac with Apple silicon; use cpu here$"
    ):
        packager.load(FIXTURES / "typed", device="mps")


def test_a_gpu_index_past_the_visible_ones_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    no_gpu(monkeypatch, tmp_path)
    fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(device_count=lambda: 2))
    monkeypatch.setitem(sys.modules, "torch", fake_torch)  # once imported, torch's count is the truth
    assert packager.load(FIXTURES / "typed", device="cuda:1").model.injected["device"] == "cuda:1"
    with pytest.raises(packager.PackagerError) as info:
        packager.load(FIXTURES / "typed", device="cuda:2")
    assert str(info.value) == "device: 'cuda:2' asked for, but only 2 GPUs are visible (cuda:0 to cuda:1)"


def test_predict_takes_keyword_arguments_as_the_input_dict(typed: packager.ModelHandle) -> None:
    assert typed.predict(text="hi", times=2).text == "HIHI!"
    assert asyncio.run(typed.apredict(text="b")).text == "B!"
    with pytest.raises(InputError) as info:
        typed.predict({"text": "hi"}, times=2)
    assert str(info.value) == (
        "give predict() the input either as one value or as keyword arguments, not both: "
        "predict({...}) or predict(times=...)"
    )
    with pytest.raises(InputError, match=r"^input is invalid: text: Field required$"):
        typed.predict()


def concurrency_package(tmp_path: Path, concurrency: int) -> Path:
    (tmp_path / "package.yaml").write_text(
        f"spec_version: 1\nname: counted\nruntime:\n  predict_concurrency: {concurrency}\n"
    )
    (tmp_path / "model.py").write_text(
        "import threading, time\n"
        "class Model:\n"
        "    def __init__(self):\n"
        "        self.lock, self.now, self.most = threading.Lock(), 0, 0\n"
        "    def enter(self):\n"
        "        with self.lock:\n"
        "            self.now += 1\n"
        "            self.most = max(self.most, self.now)\n"
        "        time.sleep(0.02)\n"
        "        with self.lock:\n"
        "            self.now -= 1\n"
        "    def predict(self, x):\n"
        "        self.enter()\n"
        "        if x == 'stream':\n"
        "            return self.chunks()\n"
        "        return x\n"
        "    def chunks(self):\n"
        "        for i in range(2):\n"
        "            self.enter()\n"
        "            yield i\n"
    )
    return tmp_path


@pytest.mark.parametrize("concurrency", [1, 3])
def test_threads_sharing_a_handle_respect_predict_concurrency(tmp_path: Path, concurrency: int) -> None:
    handle = packager.load(concurrency_package(tmp_path, concurrency))
    results: list[object] = []

    def call(i: int) -> None:
        results.append(list(handle.predict("stream")) if i % 2 else handle.predict(i))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(results) == 8
    assert results.count([0, 1]) == 4
    assert handle.model.most == concurrency


def test_close_lets_the_model_go_and_later_predicts_say_so(typed_root: Path) -> None:
    with packager.load(typed_root, device="cpu") as handle:
        instance = weakref.ref(handle.model)
        assert handle.predict({"text": "a"}).text == "A!"
    assert handle.closed
    assert handle.model is None
    assert instance() is None
    with pytest.raises(packager.NotReadyError) as info:
        handle.predict({"text": "a"})
    assert (
        str(info.value)
        == "model 'typed' was closed (ModelHandle.close()); load it again with packager.load()"
    )
    handle.close()  # idempotent
    assert repr(handle) == "<ModelHandle 'typed' device='cpu' closed>"


def test_close_frees_cuda_memory_only_when_torch_is_in_use(
    typed_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emptied: list[bool] = []
    cuda = types.SimpleNamespace(is_initialized=lambda: True, empty_cache=lambda: emptied.append(True))
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    packager.load(typed_root, device="cpu").close()
    assert emptied == [True]
    monkeypatch.delitem(sys.modules, "torch")
    packager.load(typed_root, device="cpu").close()
    assert "torch" not in sys.modules
    assert emptied == [True]


def test_async_model_after_close_stops_its_loop() -> None:
    handle = packager.load(FIXTURES / "async_model")
    assert handle.predict({"values": [1]}) == {"sum": 1}
    thread = handle._sync._loop._thread
    assert thread is not None
    assert thread.is_alive()
    handle.close()
    assert not thread.is_alive()


@pytest.fixture
def typed_root(tmp_path: Path) -> Path:
    root = tmp_path / "typed"
    shutil.copytree(FIXTURES / "typed", root)
    return root


EXITS = [
    (
        "import sys\nsys.exit(3)\n",
        packager.ModelImportError,
        r"^model.py line 2: importing the model called sys.exit\(3\) \(SystemExit\); model code must raise an exception instead of exiting the process$",
    ),
    (
        "class Model:\n    def __init__(self):\n        raise SystemExit('bye')\n    def predict(self, x):\n        return x\n",
        packager.ModelLoadError,
        r"^__init__ raised SystemExit \(bye\); model code must not exit the process$",
    ),
    (
        "import sys\nclass Model:\n    def load(self):\n        sys.exit()\n    def predict(self, x):\n        return x\n",
        packager.ModelLoadError,
        r"^load raised SystemExit",
    ),
    (
        "class Model:\n    async def load(self):\n        exit(4)\n    def predict(self, x):\n        return x\n",
        packager.ModelLoadError,
        r"^load raised SystemExit \(4\)",
    ),
]


@pytest.mark.parametrize(("source", "kind", "message"), EXITS)
def test_system_exit_while_loading_is_a_load_error(
    tmp_path: Path, source: str, kind: type[Exception], message: str
) -> None:
    (tmp_path / "package.yaml").write_text("spec_version: 1\nname: exits\n")
    (tmp_path / "model.py").write_text(source)
    with pytest.raises(kind, match=message):
        packager.load(tmp_path)


def test_system_exit_in_predict_is_a_predict_error_and_the_model_goes_on(tmp_path: Path) -> None:
    (tmp_path / "package.yaml").write_text("spec_version: 1\nname: exits\n")
    (tmp_path / "model.py").write_text(
        "import sys\n"
        "class Model:\n"
        "    def predict(self, x):\n"
        "        if x == 'exit':\n"
        "            sys.exit(2)\n"
        "        if x == 'stream':\n"
        "            return self.chunks()\n"
        "        if x == 'async':\n"
        "            return self.later()\n"
        "        return x\n"
        "    def chunks(self):\n"
        "        yield 1\n"
        "        sys.exit(5)\n"
        "    async def later(self):\n"
        "        raise SystemExit(6)\n"
    )
    handle = packager.load(tmp_path)
    with pytest.raises(
        PredictError, match=r"^predict raised SystemExit \(2\); model code must not exit"
    ) as info:
        handle.predict("exit")
    assert isinstance(info.value.__cause__, SystemExit)
    stream = handle.predict("stream")
    assert next(stream) == 1
    with pytest.raises(PredictError, match=r"^predict raised SystemExit \(5\)"):
        next(stream)
    assert handle.predict("fine") == "fine"


def test_system_exit_in_async_code_keeps_the_background_loop_alive(tmp_path: Path) -> None:
    (tmp_path / "package.yaml").write_text("spec_version: 1\nname: exits\n")
    (tmp_path / "model.py").write_text(
        "class Model:\n"
        "    async def predict(self, x):\n"
        "        if x == 'exit':\n"
        "            raise SystemExit(6)\n"
        "        return x\n"
    )
    handle = packager.load(tmp_path)
    with pytest.raises(PredictError, match=r"^predict raised SystemExit \(6\)"):
        handle.predict("exit")
    assert handle.predict("after") == "after"


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
