"""package.yaml validation: every problem reported at once, with exact messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from packager import Spec, SpecError, read_package
from packager._spec import spec_json_schema

MODEL = "class Model:\n    def predict(self, inputs):\n        return inputs\n"


def write_package(root: Path, yaml_text: str, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.yaml").write_text(yaml_text)
    for name, text in {"model.py": MODEL, **(files or {})}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def problems(tmp_path: Path, yaml_text: str, files: dict[str, str] | None = None) -> list[str]:
    write_package(tmp_path, yaml_text, files)
    with pytest.raises(SpecError) as info:
        read_package(tmp_path)
    prefix = f"{tmp_path / 'package.yaml'}: "
    return [str(issue).removeprefix(prefix) for issue in info.value.issues]


def test_minimal_spec_gets_defaults(tmp_path: Path) -> None:
    package = read_package(write_package(tmp_path, "spec_version: 1\nname: echo\n"))
    spec = package.spec
    assert spec.python_version == "3.11"
    assert spec.model.file == "model.py"
    assert spec.model.class_name == "Model"
    assert spec.resources.accelerator is None
    assert spec.resources.gpu_count == 0
    assert spec.runtime.predict_concurrency == 1
    assert spec.runtime.batching.max_batch_size == 8
    assert package.root == tmp_path.resolve()


def test_full_spec_is_parsed_and_normalised(tmp_path: Path) -> None:
    yaml_text = """
spec_version: 1
name: clip-vit
description: CLIP embeddings
python_version: "3.12"
requirements: [torch, transformers==4.44.0]
system_packages: [ffmpeg]
environment: {HF_HUB_OFFLINE: 1, DEBUG: true}
secrets: [hf_token]
resources: {cpu: 4, memory: 16Gi, accelerator: a100:2, gpu_memory: 40Gi}
model: {file: src/clip.py, class: Clip}
weights:
  - hf://openai/clip-vit-base-patch32@3d74acf
  - source: ./ckpt
    dir: local
  - source: s3://my-bucket/models/clip.safetensors
    fetch: start
    sha256: {clip.safetensors: %s}
runtime:
  predict_concurrency: 4
  request_timeout_s: 30
  batching: {max_batch_size: 32, max_wait_ms: 10}
examples:
  - {name: cat, input: {text: a cat}, output: {ok: true}}
build:
  cuda_version: "12.4"
  extra_index_urls: [https://download.pytorch.org/whl/cu124]
  commands: [python -c 'print(1)']
""" % ("a" * 64)
    root = write_package(tmp_path, yaml_text, {"src/clip.py": MODEL, "ckpt/w.bin": "x"})
    spec = read_package(root).spec
    assert spec.resources.accelerator == "A100:2"
    assert (spec.resources.gpu_type, spec.resources.gpu_count) == ("A100", 2)
    assert spec.environment == {"HF_HUB_OFFLINE": "1", "DEBUG": "true"}
    assert [w.dir for w in spec.weights] == ["clip-vit-base-patch32", "local", "clip.safetensors"]
    assert [w.kind for w in spec.weights] == ["hf", "local", "s3"]
    assert spec.weights[0].revision == "3d74acf"
    assert spec.weights[2].fetch == "start"
    assert spec.model.class_name == "Clip"
    assert spec.example("cat") is not None
    assert spec.example("dog") is None


BAD_SPECS = [
    pytest.param(
        "spec_version: 2\nname: x\n",
        ["spec_version: expected 1 (got 2)"],
        id="version",
    ),
    pytest.param(
        "name: x\n",
        ["spec_version: required field is missing; add it"],
        id="missing-version",
    ),
    pytest.param(
        "spec_version: 1\nname: My Model\n",
        ["name: use 1-64 lower-case letters, digits, '.', '_' or '-', e.g. 'my-model' (got 'My Model')"],
        id="name",
    ),
    pytest.param(
        "spec_version: 1\nname: x\npython_version: 3.10\n",
        ['python_version: quote the version so YAML keeps it text, e.g. "3.11" (got 3.1)'],
        id="python-unquoted",
    ),
    pytest.param(
        'spec_version: 1\nname: x\npython_version: "3.8"\n',
        ["python_version: use one of 3.9, 3.10, 3.11, 3.12, 3.13 (got '3.8')"],
        id="python-old",
    ),
    pytest.param(
        "spec_version: 1\nname: x\nresources: {accelerator: h100x}\n",
        [
            "resources.accelerator: unknown accelerator; use one of T4, L4, A10G, A100, A100-80GB, H100, H200, "
            "optionally with a count such as 'A100:2' (got 'h100x')"
        ],
        id="accelerator",
    ),
    pytest.param(
        "spec_version: 1\nname: x\nresources: {accelerator: 'A100:0'}\n",
        [
            "resources.accelerator: unknown accelerator; use one of T4, L4, A10G, A100, A100-80GB, H100, H200, "
            "optionally with a count such as 'A100:2' (got 'A100:0')"
        ],
        id="accelerator-count",
    ),
    pytest.param(
        "spec_version: 1\nname: x\nresources: {memroy: 4Gi, memory: lots, cpu: 0}\n",
        [
            "resources.cpu: expected a positive CPU count such as '2', '0.5' or '500m' (got 0)",
            "resources.memory: expected a size such as '512Mi' or '16Gi' (units Ki, Mi, Gi, Ti) (got 'lots')",
            "resources.memroy: unknown field; did you mean 'memory'? (got '4Gi')",
        ],
        id="resources",
    ),
    pytest.param(
        "spec_version: 1\nname: x\nrequirments: [numpy]\n",
        ["requirments: unknown field; did you mean 'requirements'? (got ['numpy'])"],
        id="misspelt-top",
    ),
    pytest.param(
        "spec_version: 1\nname: x\nzzz: 1\n",
        [
            "zzz: unknown field; valid fields here: spec_version, name, description, python_version, "
            "requirements, requirements_file, system_packages, environment, secrets, resources, model, "
            "weights, runtime, examples, build, server (got 1)"
        ],
        id="unknown-top",
    ),
    pytest.param(
        "spec_version: 1\nname: x\nrequirements: [numpy]\nrequirements_file: requirements.txt\n",
        [
            "requirements_file: use either requirements or requirements_file, not both (got 'requirements.txt')",
            "requirements_file: file not found in the package; create it or list requirements inline under "
            "'requirements' (got 'requirements.txt')",
        ],
        id="requirements-both",
    ),
    pytest.param(
        "spec_version: 1\nname: x\nrequirements_file: reqs.txt\n",
        [
            "requirements_file: file not found in the package; create it or list requirements inline under "
            "'requirements' (got 'reqs.txt')"
        ],
        id="requirements-file-missing",
    ),
    pytest.param(
        "spec_version: 1\nname: x\nmodel: {file: net.py, class: 1Net}\n",
        [
            "model.class: expected a Python class name, e.g. 'Model' (got '1Net')",
            "model.file: file not found in the package; create it or point model.file at your model's .py "
            "file (got 'net.py')",
        ],
        id="model",
    ),
    pytest.param(
        "spec_version: 1\nname: x\nweights: [hf://org, ftp://h/f, http://h/f, /abs, ./gone]\n",
        [
            "weights[0].source: malformed hf:// source; write hf://ORG/REPO@REVISION, https://HOST/PATH, "
            "s3://BUCKET/KEY, gs://BUCKET/KEY or a path inside the package such as ./weights (got 'hf://org')",
            "weights[1].source: unsupported scheme 'ftp'; write hf://ORG/REPO@REVISION, https://HOST/PATH, "
            "s3://BUCKET/KEY, gs://BUCKET/KEY or a path inside the package such as ./weights (got 'ftp://h/f')",
            "weights[2].source: unsupported scheme 'http'; use https:// (plain http is not allowed); write "
            "hf://ORG/REPO@REVISION, https://HOST/PATH, s3://BUCKET/KEY, gs://BUCKET/KEY or a path inside "
            "the package such as ./weights (got 'http://h/f')",
            "weights[3].source: a local source must be a path inside the package, e.g. ./weights (got '/abs')",
            "weights[4].source: local weights not found in the package; add them there or use an hf:// or "
            "https:// source (got './gone')",
        ],
        id="weights-sources",
    ),
    pytest.param(
        "spec_version: 1\nname: x\nweights:\n  - {source: 'hf://a/b', dir: m, sha256: {f: abc}}\n"
        "  - {source: 'hf://a/c', dir: m, fetch: later}\n",
        [
            "weights[0].sha256: f: expected 64 lower-case hex digits (sha256sum output) (got {'f': 'abc'})",
            "weights[1].fetch: expected 'build' or 'start' (got 'later')",
        ],
        id="weights-fields",
    ),
    pytest.param(
        "spec_version: 1\nname: x\nweights: ['hf://a/b', {source: 'hf://c/b'}]\n",
        ["weights: two weight sources land in the same dir: 'b'; give each a distinct name"],
        id="weights-same-dir",
    ),
    pytest.param(
        "spec_version: 1\nname: x\nruntime: {predict_concurrency: 0, request_timeout_s: fast, "
        "batching: {max_batch_size: 2.5, max_wait: 1}}\n",
        [
            "runtime.predict_concurrency: must be at least 1 (got 0)",
            "runtime.request_timeout_s: expected a number (got 'fast')",
            "runtime.batching.max_batch_size: expected a whole number, not a fraction (got 2.5)",
            "runtime.batching.max_wait: unknown field; did you mean 'max_wait_ms'? (got 1)",
        ],
        id="runtime",
    ),
    pytest.param(
        "spec_version: 1\nname: x\nexamples: [{name: a, input: 1}, {name: a, input: 2}, {input: 3}]\n",
        ["examples[2].name: required field is missing; add it"],
        id="examples",
    ),
    pytest.param(
        "spec_version: 1\nname: x\nsecrets: [hf_token, hf_token]\nenvironment: {1BAD: x}\n",
        [
            "environment: '1BAD' is not a valid variable name (got {'1BAD': 'x'})",
            "secrets: each secret name may appear only once",
        ],
        id="secrets-env",
    ),
    pytest.param(
        "spec_version: 1\nname: x\nbuild: {cuda_version: '12', wheelhouse: wheels, commands: echo}\n",
        [
            "build.cuda_version: expected a CUDA major.minor version such as '12.4' (got '12')",
            "build.commands: expected a list (YAML '- item' lines) (got 'echo')",
            "build.wheelhouse: folder not found in the package; create it (pip download -d) or remove the "
            "field (got 'wheels')",
        ],
        id="build",
    ),
]


YAML_SOURCE_PROBLEMS = [
    pytest.param(
        "spec_version: 1\nname: x\nruntime:\n  max_queue: 4\n  max_queue: 5\nname: y\n",
        [
            "runtime.max_queue: given twice, on lines 4 and 5; YAML keeps only the last one, so remove one",
            "name: given twice, on lines 2 and 6; YAML keeps only the last one, so remove one",
        ],
        id="duplicate-keys",
    ),
    pytest.param(
        "spec_version: 1\nname: x\nexamples: [{name: a, input: {t: 1, t: 2}}]\n",
        ["examples[0].input.t: given twice, on line 3; YAML keeps only the last one, so remove one"],
        id="duplicate-in-flow",
    ),
    pytest.param(
        "spec_version: 1\nname: x\nenvironment:\n  MODE: 0755\n  DEBUG: yes\n  VERSION: 1.10\n"
        "  FAST: on\n  BIG: 1.0e+3\n  OK: 1\n  TRUE_: true\n  QUOTED: '0755'\n  NOTHING: null\n",
        [
            "environment.MODE: YAML reads 0755 as the number 493, so MODE would be '493'; "
            'quote the value so YAML keeps it text, e.g. MODE: "0755"',
            "environment.DEBUG: YAML reads yes as the boolean true, so DEBUG would be 'true'; "
            'quote the value so YAML keeps it text, e.g. DEBUG: "yes"',
            "environment.VERSION: YAML reads 1.10 as the number 1.1, so VERSION would be '1.1'; "
            'quote the value so YAML keeps it text, e.g. VERSION: "1.10"',
            "environment.FAST: YAML reads on as the boolean true, so FAST would be 'true'; "
            'quote the value so YAML keeps it text, e.g. FAST: "on"',
            "environment.BIG: YAML reads 1.0e+3 as the number 1000.0, so BIG would be '1000.0'; "
            'quote the value so YAML keeps it text, e.g. BIG: "1.0e+3"',
            "environment.NOTHING: expected text; quote the value",
        ],
        id="environment-values-yaml-changes",
    ),
    pytest.param(
        "spec_version: 1\nname: x\nrequirements:\n  - numpy>=1.26\n  - torch=2.1\n  - 'a b'\n"
        "  - --extra-index-url https://x\n  - foo @ https://h/foo.whl\n  - git+https://h/r.git\n",
        [
            "requirements[1]: not a valid requirement: Expected semicolon (after name with no version "
            "specifier) or end; use '==' for an exact version, e.g. 'torch==2.1' (got 'torch=2.1')",
            "requirements[2]: not a valid requirement: Expected semicolon (after name with no version "
            "specifier) or end; write it like 'numpy>=1.26' or 'name @ https://...' (got 'a b')",
            "requirements[3]: a pip option, not a requirement; put index URLs under build.extra_index_urls "
            "and find-links under build.find_links (got '--extra-index-url https://x')",
        ],
        id="requirements-pep508",
    ),
]


@pytest.mark.parametrize(("yaml_text", "expected"), YAML_SOURCE_PROBLEMS)
def test_problems_only_the_yaml_source_shows(tmp_path: Path, yaml_text: str, expected: list[str]) -> None:
    assert problems(tmp_path, yaml_text) == expected


def test_unchanged_environment_scalars_are_accepted(tmp_path: Path) -> None:
    text = "spec_version: 1\nname: x\nenvironment: {A: 1, B: true, C: 2.5, D: '0755', E: 1e3, F: plain}\n"
    spec = read_package(write_package(tmp_path, text)).spec
    assert spec.environment == {"A": "1", "B": "true", "C": "2.5", "D": "0755", "E": "1e3", "F": "plain"}


def test_requirements_file_lines_are_pep508(tmp_path: Path) -> None:
    reqs = (
        "# pinned\n\nnumpy==1.26  # inline comment\n-r other.txt\n--extra-index-url https://x/simple\n"
        "-e ./local\ntorch>=2 ; python_version >= '3.9' --hash=sha256:abc\nrequests[socks]>=2\n"
        "transformers=4.40\n./wheels/thing.whl\nscipy \\\n  >=1.10\nbad name\n"
    )
    text = "spec_version: 1\nname: x\nrequirements_file: requirements.txt\n"
    found = problems(tmp_path, text, {"requirements.txt": reqs})
    prefix = f"{tmp_path / 'requirements.txt'}: "
    assert [f.removeprefix(prefix) for f in found] == [
        "line 9: not a valid requirement: Expected semicolon (after name with no version specifier) or end; "
        "use '==' for an exact version, e.g. 'transformers==4.40' (got 'transformers=4.40')",
        "line 13: not a valid requirement: Expected semicolon (after name with no version specifier) or end; "
        "write it like 'numpy>=1.26' or 'name @ https://...' (got 'bad name')",
    ]


def test_yaml_problems_come_with_the_other_spec_problems(tmp_path: Path) -> None:
    text = "spec_version: 1\nname: X\nname: Y\nenvironment: {M: 0755}\nrequirements: ['a=1']\n"
    write_package(tmp_path, text)
    with pytest.raises(SpecError) as info:
        read_package(tmp_path)
    assert [i.path for i in info.value.issues] == ["name", "environment.M", "name", "requirements[0]"]


@pytest.mark.parametrize(("yaml_text", "expected"), BAD_SPECS)
def test_bad_spec_reports_every_problem(tmp_path: Path, yaml_text: str, expected: list[str]) -> None:
    assert problems(tmp_path, yaml_text) == expected


def test_many_problems_come_in_one_error(tmp_path: Path) -> None:
    yaml_text = (
        "spec_version: 1\nname: X\nresources: {accelerator: TPU}\nmodle: {}\nruntime: {max_queue: 0}\n"
    )
    write_package(tmp_path, yaml_text)
    with pytest.raises(SpecError) as info:
        read_package(tmp_path)
    error = info.value
    assert len(error.issues) == 4
    assert str(error).splitlines()[0] == f"{tmp_path / 'package.yaml'}: 4 problems"
    assert {i.path for i in error.issues} == {"name", "resources.accelerator", "modle", "runtime.max_queue"}
    assert "pydantic" not in str(error).lower()
    assert "Input should" not in str(error)


def test_examples_with_the_same_name(tmp_path: Path) -> None:
    found = problems(
        tmp_path, "spec_version: 1\nname: x\nexamples: [{name: a, input: 1}, {name: a, input: 2}]\n"
    )
    assert found == ["examples: two examples share a name: 'a'; give each a distinct name"]


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    assert problems(tmp_path, "spec_version: 1\nname: [x\n") == [
        "line 3, column 1: not valid YAML: expected ',' or ']', but got '<stream end>'; fix the syntax there"
    ]


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    assert problems(tmp_path, "- a\n- b\n") == [
        "expected a mapping of fields at the top level, starting with 'spec_version: 1' (got ['a', 'b'])"
    ]


def test_missing_directory_and_misnamed_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        read_package(tmp_path / "nope")
    assert str(info.value.issues[0]).endswith(
        "no such file or directory; pass a package directory holding package.yaml"
    )
    (tmp_path / "config.yaml").write_text("spec_version: 1\n")
    with pytest.raises(SpecError) as info:
        read_package(tmp_path)
    assert str(info.value.issues[0]).endswith(
        "no package.yaml in this directory; found config.yaml: rename it to package.yaml; `pkg new` creates one"
    )


def test_an_empty_directory_names_pkg_new(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        read_package(tmp_path)
    assert (
        str(info.value.issues[0])
        == f"{tmp_path / 'package.yaml'}: no package.yaml in this directory; `pkg new` creates one"
    )


def test_a_directory_named_package_yaml_is_not_a_spec(tmp_path: Path) -> None:
    (tmp_path / "package.yaml").mkdir()
    for given in (tmp_path, tmp_path / "package.yaml"):
        with pytest.raises(SpecError) as info:
            read_package(given)
        assert str(info.value.issues[0]) == (
            f"{tmp_path / 'package.yaml'}: is a directory, not a file; package.yaml must be the "
            "package's spec file (`pkg new` creates one)"
        )


@pytest.mark.parametrize("name", ["model.py", "weights.bin", "README"])
def test_a_file_that_is_not_yaml_is_not_read_as_a_spec(tmp_path: Path, name: str) -> None:
    root = write_package(tmp_path / "hello", "spec_version: 1\nname: x\n", {name: "print('hi')\n"})
    with pytest.raises(SpecError) as info:
        read_package(root / name)
    assert str(info.value.issues[0]) == (
        f"{root / name}: is a file, not a package; pass the package directory ({root}) or its package.yaml"
    )


def test_a_spec_file_path_works_too(tmp_path: Path) -> None:
    root = write_package(tmp_path, "spec_version: 1\nname: x\n")
    assert read_package(root / "package.yaml").spec.name == "x"


def test_spec_is_frozen(tmp_path: Path) -> None:
    spec = read_package(write_package(tmp_path, "spec_version: 1\nname: x\n")).spec
    with pytest.raises(Exception, match="frozen"):
        spec.name = "y"  # type: ignore[misc]


def test_json_schema_rejects_unknown_keys_and_names_fields() -> None:
    schema = spec_json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"spec_version", "name"}
    assert "class" in json.dumps(schema["$defs"]["ModelRef"])
    assert Spec.model_json_schema(by_alias=True)["properties"].keys() == schema["properties"].keys()
    items = schema["properties"]["weights"]["items"]["anyOf"]
    assert items == [
        {"type": "string", "description": "Shorthand for {source: ...}."},
        {"$ref": "#/$defs/WeightSource"},
    ]
