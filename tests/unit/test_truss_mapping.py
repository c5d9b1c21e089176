"""config.yaml (Truss) onto the Spec: a table of snippets and the fields or exact problems they give."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

import packager
from packager._errors import SpecError
from packager._spec_load import read_package

MODEL = "class Model:\n    def predict(self, model_input):\n        return model_input\n"
GREETER = Path(__file__).parents[1] / "fixtures" / "truss" / "greeter"


def _truss(tmp_path: Path, config: dict[str, Any] | str) -> Path:
    root = tmp_path / "my-truss"
    (root / "model").mkdir(parents=True)
    (root / "model" / "model.py").write_text(MODEL, encoding="utf-8")
    text = config if isinstance(config, str) else yaml.safe_dump(config)
    (root / "config.yaml").write_text(text, encoding="utf-8")
    return root


MAPPED = [
    ({}, lambda s: (s.name, s.python_version, s.model.file), ("my-truss", "3.13", "model/model.py")),
    ({"model_name": "My Model!", "python_version": "py310"}, lambda s: (s.name, s.python_version), ("my-model", "3.10")),
    ({"requirements": ["numpy==1.26.4"], "system_packages": ["ffmpeg"]},
     lambda s: (s.requirements, s.system_packages), (["numpy==1.26.4"], ["ffmpeg"])),
    ({"environment_variables": {"A": 1, "B": True, "C": "x"}}, lambda s: s.environment,
     {"A": "1", "B": "true", "C": "x"}),
    ({"secrets": {"hf_access_token": None, "other": "default"}}, lambda s: s.secrets, ["hf_access_token", "other"]),
    ({"resources": {"cpu": "500m", "memory": "4Gi", "accelerator": "A10G", "use_gpu": True}},
     lambda s: (s.resources.cpu, s.resources.memory, s.resources.accelerator), ("500m", "4Gi", "A10G")),
    ({"resources": {"accelerator": "A100_40GB:2"}}, lambda s: s.resources.accelerator, "A100:2"),
    ({"resources": {"accelerator": "A100"}}, lambda s: s.resources.accelerator, "A100-80GB"),
    ({"runtime": {"predict_concurrency": 8}}, lambda s: s.runtime.predict_concurrency, 8),
    ({"model_metadata": {"example_model_input": {"prompt": "hi"}}},
     lambda s: [(e.name, e.input) for e in s.examples], [("example_model_input", {"prompt": "hi"})]),
    ({"build_commands": ["echo hi"], "base_image": {"image": "python:3.11-slim"}},
     lambda s: (s.build.commands, s.build.base_image), (["echo hi"], "python:3.11-slim")),
    ({"external_data": [{"url": "https://example.com/small.pt", "local_data_path": "models/small.pt"}]},
     lambda s: [(w.source, w.dir, w.fetch) for w in s.weights],
     [("https://example.com/small.pt", "models_small.pt", "build")]),
    ({"model_cache": [{"repo_id": "org/repo", "revision": "abc123", "use_volume": True, "volume_folder": "repo",
                       "allow_patterns": ["*.json"]}]},
     lambda s: [(w.source, w.dir, w.fetch, w.allow_patterns) for w in s.weights],
     [("hf://org/repo@abc123", "repo", "start", ["*.json"])]),
    ({"weights": [{"source": "hf://org/repo@main", "mount_location": "/app/model_cache/repo"}]},
     lambda s: [(w.source, w.dir, w.fetch) for w in s.weights], [("hf://org/repo@main", "app_model_cache_repo", "start")]),
    ({"model_module_dir": "src", "model_class_name": "Predictor"}, lambda s: (s.model.file, s.model.class_name),
     ("src/model.py", "Predictor")),
    ({"live_reload": False, "build": {"model_server": "TrussServer", "arguments": {}}, "runtime": {"transport": {"kind": "http"}}},
     lambda s: s.name, "my-truss"),
]  # fmt: skip


@pytest.mark.parametrize(("config", "field", "expected"), MAPPED)
def test_config_maps_onto_the_spec(tmp_path: Path, config: dict[str, Any], field: Any, expected: Any) -> None:
    root = _truss(tmp_path, config)
    if config.get("model_module_dir") == "src":
        (root / "src").mkdir()
        (root / "src" / "model.py").write_text(MODEL.replace("Model", "Predictor"), encoding="utf-8")
    package = read_package(root)
    assert field(package.spec) == expected
    assert package.origin is not None
    assert package.origin.kind == "truss"


REJECTED = [
    ({"python_version": "py38"}, "python_version: expected one of py39, py310, py311, py312, py313, py314 (Truss's spelling) (got 'py38')"),
    ({"python_version": "py314"}, "python_version: packager images run Python 3.9 to 3.13; use py313 (got 'py314')"),
    ({"resources": {"memory": "2GB"}}, "resources.memory: expected a size with a unit such as '512Mi' or '2Gi' (k M G T Ki Mi Gi Ti) (got '2GB')"),
    ({"resources": {"accelerator": "A100:0"}}, "resources.accelerator: invalid count; write TYPE:N with N at least 1, e.g. 'A100:2' (got 'A100:0')"),
    ({"resources": {"accelerator": "B200"}}, "resources.accelerator: packager has no base image for B200 yet; use one of A100, A100_40GB, A10G, H100, H100_40GB, H200, L4, T4 (got 'B200')"),
    ({"resources": {"use_gpu": True}}, "resources.use_gpu: use_gpu: true without an accelerator gives a CPU image in Truss; name the GPU, e.g. accelerator: A10G (or remove use_gpu) (got True)"),
    ({"requirements": ["a"], "requirements_file": "requirements.txt"}, "requirements_file: use either requirements or requirements_file, not both (got 'requirements.txt')"),
    ({"requirements_file": "pyproject.toml"}, "requirements_file: packager installs pip requirements files only; export it (uv export > requirements.txt) (got 'pyproject.toml')"),
    ({"model_cache": [{"repo_id": "org/repo"}]}, "model_cache[0].use_volume: required: false bakes the repo at build, true fetches it at start"),
    ({"model_cache": [{"repo_id": "a/b", "use_volume": True}]}, "model_cache[0]: use_volume: true needs a pinned revision and a volume_folder (Truss's rule)"),
    ({"weights": [{"source": "azure://acct/c", "mount_location": "/w"}]}, "weights[0].source: packager fetches hf://, s3://, gs:// and https:// sources; mirror the files to one of those (got 'azure://acct/c')"),
    ({"weights": [{"source": "hf://a/b", "mount_location": "w"}]}, "weights[0].mount_location: must be an absolute path, e.g. /app/model_cache/llama (got 'w')"),
    ({"trt_llm": {"build": {"base_model": "decoder"}}}, "trt_llm: not supported by packager: in Truss it builds a TensorRT-LLM engine on Baseten and serves it with Baseten's engine; serve the model with vLLM or TGI through docker_server (packager's server:), or write a model.py"),
    ({"resources": {"instance_type": "L4:4x16"}}, "resources.instance_type: not supported by packager: in Truss it picks a Baseten instance SKU such as L4:4x16; set resources.cpu, resources.memory and resources.accelerator instead"),
    ({"runtime": {"num_workers": 2}}, "runtime.num_workers: not supported by packager: in Truss it ran several server processes before truss 0.9.49, which now rejects values other than 1; remove it; raise runtime.predict_concurrency instead"),
    ({"modle_name": "x"}, "modle_name: not a Truss config key (Truss rejects it too); did you mean 'model_name'? (got 'x')"),
    ({"runtime": {"predict_concurrency": 0}}, "runtime.predict_concurrency: expected a whole number, at least 1 (got 0)"),
    ({"environment_variables": {"1BAD": "x"}}, "environment_variables: '1BAD' is not a valid variable name (got {'1BAD': 'x'})"),
]  # fmt: skip


@pytest.mark.parametrize(("config", "message"), REJECTED)
def test_rejected_configs_name_file_key_value_and_remedy(
    tmp_path: Path, config: dict[str, Any], message: str
) -> None:
    root = _truss(tmp_path, config)
    with pytest.raises(SpecError) as caught:
        read_package(root)
    assert [str(i) for i in caught.value.issues] == [f"{root / 'config.yaml'}: {message}"]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    config = {"python_version": "py27", "resources": {"cpu": "lots"}, "trt_llm": {"x": 1}, "bogus": 1}
    root = _truss(tmp_path, config)
    (root / "model" / "model.py").unlink()
    with pytest.raises(SpecError) as caught:
        read_package(root)
    paths = sorted(i.path for i in caught.value.issues)
    assert paths == ["bogus", "model_module_dir", "python_version", "resources.cpu", "trt_llm"]


def test_duplicate_keys_are_rejected_as_truss_does(tmp_path: Path) -> None:
    root = _truss(tmp_path, "model_name: a\nmodel_name: b\n")
    with pytest.raises(SpecError, match="model_name: given twice"):
        read_package(root)


def test_keys_without_effect_outside_baseten_warn_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = _truss(tmp_path, {"live_reload": True, "runtime": {"enable_debug_logs": True}})
    with caplog.at_level(logging.WARNING, logger="packager.truss"):
        read_package(root)
        read_package(root)
    lines = [r.getMessage() for r in caplog.records if r.name == "packager.truss"]
    assert lines == [
        f"{root / 'config.yaml'}: live_reload, runtime.enable_debug_logs have no effect outside Baseten; ignored (docs/truss.md)"
    ]


def test_an_empty_config_is_all_defaults(tmp_path: Path) -> None:
    assert read_package(_truss(tmp_path, "")).spec.python_version == "3.13"


def test_a_truss_model_gets_truss_init_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREETER_PUNCTUATION", raising=False)
    monkeypatch.delenv("GREETER_LOUD", raising=False)
    model = packager.load(GREETER)
    try:
        assert model.predict({"name": "world"}) == {"text": "hello Dear world!", "style": "formal"}
    finally:
        model.close()


def test_secrets_come_from_packager_first_then_the_config_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACKAGER_SECRET_GREETING_PREFIX", "howdy")
    model = packager.load(GREETER)
    try:
        assert model.predict({"name": "you"})["text"] == "howdy Dear you!"
    finally:
        model.close()
