"""packager.connect(): the same predict shape as packager.load(), against a real uvicorn server.

The server runs in a thread of this process (uvicorn on a port-0 socket),
so these stay quick; tests/server covers the real subprocess.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np
import pytest
from asgi_server import serving

import packager
from packager._client import RemoteModel, connect
from packager._errors import ClientError
from packager._server._main import bind

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "serving"


def running(name: str) -> contextlib.AbstractContextManager[str]:
    return serving(FIXTURES / name)


def test_predict_matches_load_for_plain_typed_and_binary_inputs() -> None:
    with running("typed") as url, connect(url, wait=60) as remote:
        local = packager.load(FIXTURES / "typed")
        assert remote.name == "typed"
        assert (
            remote.predict({"text": "hi", "repeat": 2})
            == local.predict({"text": "hi", "repeat": 2}).model_dump()
        )
        assert remote.schema() == local.schema()
        assert remote.ready()
    with running("numpy_model") as url, connect(url, wait=60) as remote:
        out = remote.predict({"array": np.arange(4, dtype=np.int32), "blob": b"\x01"})
        np.testing.assert_array_equal(out["array"], np.arange(4, dtype=np.int32) * 2)
        assert out["array"].dtype == np.int32
        assert out["blob"] == b"\x01"


def test_streaming_predict_returns_an_iterator_and_stopping_closes_the_generator(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    with running("stream") as url, connect(url, wait=60) as remote:
        chunks = remote.predict({"n": 3})
        assert not isinstance(chunks, (list, str))
        assert list(chunks) == ["tok0 ", "tok1 ", "tok2 "]
        endless = remote.predict({"n": 100000, "delay": 0.01, "marker": str(marker)})
        assert next(endless) == "tok0 "
        endless.close()
        deadline = time.monotonic() + 60
        while not (marker.exists() and "closed" in marker.read_text()):
            assert time.monotonic() < deadline, "the model's generator was never closed"
            time.sleep(0.02)
        assert "".join(remote.predict({"n": 2})) == "tok0 tok1 "
        with pytest.raises(ClientError, match="boom at 1") as failed:
            list(remote.predict({"n": 3, "fail_at": 1}))
        assert failed.value.status_code == 500


def test_http_errors_become_client_errors_with_status_and_body() -> None:
    with running("typed") as url, connect(url, wait=60) as remote:
        with pytest.raises(ClientError, match="422: input is invalid: text: Field required") as invalid:
            remote.predict({"repeat": 2})
        assert invalid.value.status_code == 422
        assert invalid.value.body["errors"][0]["loc"] == ["text"]
        wrong = RemoteModel(url, name="other")
        with pytest.raises(ClientError, match="404: no model named 'other'") as missing:
            wrong.predict({})
        assert missing.value.status_code == 404
        wrong.close()
        named = RemoteModel(f"{url}/v1/models/typed:predict")
        assert named.name == "typed"
        assert named.predict({"text": "x"}) == {"text": "x", "length": 1}
        named.close()


def test_unreachable_servers_are_client_errors_with_status_0() -> None:
    with contextlib.closing(bind("127.0.0.1", 0)) as sock:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, never listening: refused
        remote = RemoteModel(url, name="x", timeout=5)
        with pytest.raises(ClientError, match="cannot reach") as failed:
            remote.predict({})
        assert failed.value.status_code == 0
        assert not remote.ready()
        with pytest.raises(ClientError, match="not ready within"):
            remote.wait(timeout=0.2, interval=0.05)
        with pytest.raises(ClientError, match="cannot reach"):
            RemoteModel(url).name  # noqa: B018
        remote.close()
    with pytest.raises(ClientError, match="cannot be sent"):
        RemoteModel("http://127.0.0.1:9", name="x").predict({"x": object()})


def test_integers_over_64_bits_arrive_exactly_and_nan_is_a_clear_error() -> None:
    with running("numbers") as url, connect(url, wait=60) as remote:
        assert remote.predict({"kind": "big"}) == {"n": 2**70, "neg": [-(2**65)]}
        with pytest.raises(ClientError, match=r"500: .*output\['scores'\]\[1\] is NaN") as nan:
            remote.predict({"kind": "nan"})
        assert nan.value.status_code == 500
    with pytest.raises(ClientError, match="cannot be sent: output is NaN"):
        RemoteModel("http://127.0.0.1:9", name="x").predict(float("nan"))


def test_the_api_key_goes_with_connect_the_environment_and_pkg_predict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from packager._cli import cli

    key = "k-3141592653"
    monkeypatch.setenv("PACKAGER_SECRET_API_KEY", key)
    monkeypatch.delenv("PACKAGER_API_KEY", raising=False)
    with running("secured") as url:
        with connect(url, wait=60, api_key=key) as remote:  # readiness needs no key; predict does
            assert remote.predict({"a": 1}) == {"a": 1}
            assert remote.name == "secured"
        with (
            connect(url) as anonymous,
            pytest.raises(ClientError, match=r"pass api_key= to packager\.connect") as no,
        ):
            anonymous.predict({"a": 1})
        assert no.value.status_code == 401
        assert "this server needs an API key" in str(no.value)
        monkeypatch.setenv("PACKAGER_API_KEY", key)
        with connect(url) as from_env:
            assert from_env.predict({"b": 2}) == {"b": 2}
        monkeypatch.delenv("PACKAGER_API_KEY")
        runner = CliRunner()
        ok = runner.invoke(
            cli, ["predict", "--url", url, "--api-key", key, "-d", '{"c": 3}'], prog_name="pkg"
        )
        assert (ok.exit_code, ok.stdout) == (0, '{"c":3}\n'), ok.output
        refused = runner.invoke(
            cli, ["predict", "--url", url, "--api-key", "nope", "-d", "{}"], prog_name="pkg"
        )
        assert refused.exit_code == 1
        assert "answered 401: the API key is wrong" in refused.output
    usage = CliRunner().invoke(cli, ["predict", ".", "--api-key", key, "-d", "{}"], prog_name="pkg")
    assert usage.exit_code != 0
    assert "--api-key goes with --url" in usage.output
