"""The model contract: violations found at load time, with messages that say what to write."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import packager
from packager import ContractError, ModelImportError

SPEC = "spec_version: 1\nname: m\n"


def package(tmp_path: Path, source: str, spec: str = SPEC, extra: dict[str, str] | None = None) -> Path:
    (tmp_path / "package.yaml").write_text(spec)
    (tmp_path / "model.py").write_text(textwrap.dedent(source))
    for name, text in (extra or {}).items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    return tmp_path


CONTRACT_VIOLATIONS = [
    pytest.param(
        "class Model:\n    def load(self): pass\n",
        "model.py:Model has no predict method; add `def predict(self, inputs): return ...`",
        id="no-predict",
    ),
    pytest.param(
        "Model = 3\n",
        "model.py: Model is a int, not a class; define `class Model:`",
        id="not-a-class",
    ),
    pytest.param(
        "class Net:\n    pass\nclass Other:\n    pass\n",
        "model.py defines no class 'Model'; it defines Net, Other: set model.class in package.yaml; "
        "or add `class Model:`",
        id="no-class",
    ),
    pytest.param(
        "class Model:\n    def predict(self):\n        return 1\n",
        "model.py:Model.predict must take exactly one argument besides self; write "
        "`def predict(self, inputs):` (it takes none)",
        id="predict-no-arg",
    ),
    pytest.param(
        "class Model:\n    def predict(self, a, b):\n        return 1\n",
        "model.py:Model.predict must take exactly one argument besides self; write "
        "`def predict(self, inputs):` (it takes (a, b))",
        id="predict-two-args",
    ),
    pytest.param(
        "class Model:\n    def predict(self, a, *, key):\n        return 1\n",
        "model.py:Model.predict must take exactly one argument besides self; write "
        "`def predict(self, inputs):` (it takes (a, *, key))",
        id="predict-kw-only",
    ),
    pytest.param(
        "class Model:\n    def postprocess(self):\n        pass\n    def predict(self, x):\n        return x\n",
        "model.py:Model.postprocess must take exactly one argument besides self; write "
        "`def postprocess(self, outputs):` (it takes none)",
        id="postprocess-arity",
    ),
    pytest.param(
        "class Model:\n    def load(self, path):\n        pass\n    def predict(self, x):\n        return x\n",
        "model.py:Model.load must take no arguments besides self; write `def load(self):`",
        id="load-arity",
    ),
    pytest.param(
        "class Model:\n    def is_healthy(self, x):\n        pass\n    def predict(self, x):\n        return x\n",
        "model.py:Model.is_healthy must take no arguments besides self; write `def is_healthy(self):`",
        id="is-healthy-arity",
    ),
    pytest.param(
        "class Model:\n    def __init__(self, model_path):\n        pass\n    def predict(self, x):\n        return x\n",
        "model.py:Model.__init__ asks for 'model_path', which packager does not provide; ask only for "
        "config, data_dir, device, secrets, spec, weights, weights_dir (by name), or give 'model_path' a default",
        id="init-unknown",
    ),
    pytest.param(
        "class Model:\n    def predict(self, x):\n        yield x\n    def postprocess(self, y):\n        return y\n",
        "model.py:Model.predict streams (it yields) so postprocess cannot run on its output; transform each "
        "chunk inside predict and remove postprocess",
        id="stream-postprocess",
    ),
    pytest.param(
        "class Model:\n    def preprocess(self, x):\n        yield x\n    def predict(self, x):\n        return x\n",
        "model.py:Model.preprocess must return its result, not yield; only predict may stream",
        id="preprocess-yields",
    ),
    pytest.param(
        "class Model:\n    def predict(self, x: 'Missing') -> int:\n        return 1\n",
        "model.py:Model.predict: cannot evaluate its type annotations (name 'Missing' is not defined); "
        "import every type it names at the top of the model file",
        id="bad-annotation",
    ),
    pytest.param(
        "class Thing:\n    pass\nclass Model:\n    def predict(self, x: Thing) -> int:\n        return 1\n",
        "model.py:Model: the input annotation <class 'packager_model_X.Thing'> cannot be validated "
        "(PydanticSchemaGenerationError); annotate with a pydantic model, a dict/list of JSON types, or leave "
        "it unannotated",
        id="unvalidatable-annotation",
    ),
]


@pytest.mark.parametrize(("source", "message"), CONTRACT_VIOLATIONS)
def test_contract_violation_is_found_at_load(tmp_path: Path, source: str, message: str) -> None:
    with pytest.raises(ContractError) as info:
        packager.load(package(tmp_path, source))
    text = str(info.value)
    if "packager_model_" in text:
        prefix, _, rest = text.partition("packager_model_")
        text = prefix + "packager_model_X" + rest[rest.index(".") :]
    assert text == message


def test_contract_errors_are_model_load_errors(tmp_path: Path) -> None:
    with pytest.raises(packager.ModelLoadError):
        packager.load(package(tmp_path, "class Model:\n    pass\n"))


def test_allowed_shapes_load(tmp_path: Path) -> None:
    source = """
    class Model:
        def __init__(self, device, secrets, unused=3):
            self.device = device
        @staticmethod
        def preprocess(x):
            return x + 1
        def predict(self, x, scale=2):
            return x * scale
        def postprocess(self, *args):
            return args[0] - 1
    """
    handle = packager.load(package(tmp_path, source), device="cpu")
    assert handle.predict(1) == 3
    assert handle.model.device == "cpu"


IMPORT_FAILURES = [
    pytest.param(
        "import numpy\nimport not_a_real_pkg_xyz\n",
        "model.py line 2: needs the module 'not_a_real_pkg_xyz', which is not installed; add "
        "'not-a-real-pkg-xyz' to requirements in package.yaml and run `pip install not-a-real-pkg-xyz`",
        ("model.py", 2, "not-a-real-pkg-xyz"),
        id="missing-dependency",
    ),
    pytest.param(
        "\n\nfrom cv2 import imread\n",
        None,
        ("model.py", 3, "opencv-python-headless"),
        id="missing-dependency-renamed",
    ),
    pytest.param(
        "class Model:\n    def predict(self, x)\n        return x\n",
        "model.py line 2: syntax error: expected ':'; fix the code there",
        ("model.py", 2, None),
        id="syntax-error",
    ),
    pytest.param(
        "import helpers\n",
        "helpers.py line 3: importing the model raised ZeroDivisionError: division by zero",
        ("helpers.py", 3, None),
        id="error-in-sibling",
    ),
    pytest.param(
        "from numpy import not_there\n",
        "model.py line 1: cannot import name 'not_there' from 'numpy' (SEE); check the installed version of "
        "that package",
        ("model.py", 1, None),
        id="bad-name-import",
    ),
]


@pytest.mark.parametrize(("source", "message", "where"), IMPORT_FAILURES)
def test_import_failure_names_file_and_line(
    tmp_path: Path, source: str, message: str | None, where: tuple[str, int, str | None]
) -> None:
    root = package(tmp_path, source, extra={"helpers.py": "X = 1\n\nY = 1 / 0\n"})
    with pytest.raises(ModelImportError) as info:
        packager.load(root)
    error = info.value
    assert (error.file, error.line, error.requirement) == where
    if message is not None:
        text = str(error)
        if "(SEE)" in message:
            start = text.index("(", text.index("from 'numpy'"))
            text = text[:start] + "(SEE)" + text[text.index(")", start) + 1 :]
        assert text == message


def test_sibling_modules_are_importable(tmp_path: Path) -> None:
    source = "from helpers import VALUE\nclass Model:\n    def predict(self, x):\n        return VALUE\n"
    root = package(tmp_path, source, extra={"helpers.py": "VALUE = 42\n"})
    assert packager.load(root).predict(None) == 42


def test_error_raised_by_init_and_load_are_load_errors(tmp_path: Path) -> None:
    source = "class Model:\n    def load(self):\n        raise RuntimeError('no gpu')\n    def predict(self, x):\n        return x\n"
    with pytest.raises(packager.ModelLoadError, match=r"^load raised RuntimeError: no gpu$") as info:
        packager.load(package(tmp_path, source))
    assert isinstance(info.value.__cause__, RuntimeError)


def test_a_syntax_error_in_an_installed_module_is_not_blamed_on_model_py(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path.parent / f"{tmp_path.name}-site"  # outside the package
    site.mkdir()
    (site / "broken_helper_lib.py").write_text("\n\ndef f(:\n    pass\n")
    monkeypatch.syspath_prepend(str(site))
    root = package(tmp_path, "import broken_helper_lib\n")
    with pytest.raises(ModelImportError) as info:
        packager.load(root)
    assert (info.value.file, info.value.line) == (str(site / "broken_helper_lib.py"), 3)
    assert str(info.value).startswith(f"{site / 'broken_helper_lib.py'} line 3: syntax error:")
