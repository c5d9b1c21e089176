"""truss's own test trusses (written by Baseten, used in place from the truss wheel): each one reads,
renders a build context, loads and predicts, or fails for the reason recorded here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import packager
from packager._build._write import write_context
from packager._errors import SpecError
from packager._spec_load import read_package

pytestmark = pytest.mark.truss

# name -> (outcome, detail): "predict" with (input, output); "rejected" with the config key;
# "skip" with why it cannot predict here (the reason is the data, checked to still hold).
EXPECTED: dict[str, tuple[str, Any]] = {
    "annotated_types_truss": ("predict", ({"prompt": "hi"}, {"generated_text": "hi"})),
    "gcs_fix": ("predict", ({}, {})),
    "server_conformance_test_truss": ("skip", "sleeps 20 s in load and 20 s in predict on purpose"),
    "test_async_truss": ("predict", ({}, {"postprocess_value": "value", "preprocess_value": "value"})),
    "test_basic_truss": ("predict", ({}, {})),
    "test_build_commands": ("predict", ({}, {"predictions": [1, 2]})),
    "test_build_commands_failure": ("predict", ({}, {"predictions": [1, 2]})),
    "test_build_commands_truss": ("predict", ({}, "TEST_FIRST_VALUE")),
    "test_concurrency_truss": ("predict", ({}, {})),
    "test_non_root_base_image": ("predict", ({}, {"success": True})),
    "test_openai": ("predict", ({}, "predict")),
    "test_pyantic_v2": ("predict", ({}, '{\n    "foo": "bla",\n    "bar": 123\n}')),
    "test_requirements_file_truss": ("predict", ({}, False)),
    "test_streaming_async_generator_truss": ("predict", ({}, ["0", "1", "2", "3", "4"])),
    "test_streaming_read_timeout": ("predict", ({}, ["0", "1", "2", "3", "4"])),
    "test_streaming_truss": ("predict", ({}, ["0", "1", "2", "3", "4"])),
    "test_streaming_truss_with_error": ("predict", ({}, ["0", "1", "2", "3", "4"])),
    "test_system_managed_python": ("predict", ({}, {"success": True})),
    "test_truss": ("predict", ({}, {"predictions": []})),
    "test_trt_llm_truss": ("rejected", "trt_llm"),
    "test_streaming_truss_with_tracing": ("rejected", "runtime.transport"),
    "model_load_failure_test": ("skip", "its load() raises on purpose"),
    "test_truss_with_error": ("skip", "its predict() raises on purpose"),
    "test_pyantic_v1": (
        "skip",
        "needs pydantic v1 (pinned in its requirements.txt); packager runs pydantic 2",
    ),
    "test_truss_server_model_cache_v1": ("skip", "downloads julien-c/EsperBERTo-small from Hugging Face"),
    "test_truss_server_model_cache_v2": ("skip", "downloads julien-c/EsperBERTo-small from Hugging Face"),
    "test_custom_server_truss": (
        "skip",
        "docker_server: its server lives in the base image baseten/fastapi-test",
    ),
    "test_env_vars": ("skip", "docker_server: its server lives in the base image baseten/fastapi-test"),
    "test_go_custom_server_truss": ("skip", "docker_server: its Go server binary lives in its base image"),
}


def test_the_table_covers_every_truss_in_the_wheel(truss_test_data: Path) -> None:
    found = sorted(p.parent.name for p in truss_test_data.glob("*/config.yaml"))
    assert found == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_held_out_truss(name: str, truss_test_data: Path, tmp_path: Path) -> None:
    outcome, detail = EXPECTED[name]
    root = truss_test_data / name
    if outcome == "rejected":
        with pytest.raises(SpecError) as caught:
            read_package(root)
        assert [i.path for i in caught.value.issues] == [detail]
        return
    package = read_package(root)
    write_context(package, tmp_path / "context")
    assert (tmp_path / "context" / "Dockerfile").is_file()
    if outcome == "skip":
        pytest.skip(f"{name}: {detail}")
    value, expected = detail
    model = packager.load(root)
    try:
        output = model.predict(value)
        output = list(output) if hasattr(output, "__next__") else output
    finally:
        model.close()
    output = output.model_dump() if hasattr(output, "model_dump") else output  # a pydantic output
    assert output == expected
