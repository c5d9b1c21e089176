"""Server settings from the environment: a bad value stops the server at start (issue 7, item 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from packager import PackagerError
from packager._pipeline import Pipeline
from packager._server import create_app
from packager._server._settings import DEFAULT_MAX_BODY, max_body_bytes
from packager._spec_load import read_package

ECHO = Path(__file__).resolve().parents[1] / "fixtures" / "serving" / "echo"


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, DEFAULT_MAX_BODY), ("", DEFAULT_MAX_BODY), ("1024", 1024), (" 7 ", 7)]
)
def test_max_body_bytes_accepts_a_positive_number_or_nothing(raw: str | None, expected: int) -> None:
    env = {} if raw is None else {"PACKAGER_MAX_BODY_BYTES": raw}
    assert max_body_bytes(env) == expected


@pytest.mark.parametrize("raw", ["lots", "-5", "0", "1.5", "64MiB"])
def test_max_body_bytes_refuses_anything_else(raw: str) -> None:
    with pytest.raises(PackagerError) as caught:
        max_body_bytes({"PACKAGER_MAX_BODY_BYTES": raw})
    assert str(caught.value) == (
        f"PACKAGER_MAX_BODY_BYTES={raw!r} is not a positive whole number of bytes; "
        "set it like PACKAGER_MAX_BODY_BYTES=67108864 (64 MiB, the default) or unset it"
    )


def test_the_app_refuses_to_start_with_a_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = Pipeline(read_package(ECHO))
    monkeypatch.setenv("PACKAGER_MAX_BODY_BYTES", "lots")
    with pytest.raises(PackagerError, match="PACKAGER_MAX_BODY_BYTES='lots'"):
        create_app(pipeline, autoload=False)
    monkeypatch.setenv("PACKAGER_MAX_BODY_BYTES", "2048")
    assert create_app(pipeline, autoload=False).max_body == 2048
