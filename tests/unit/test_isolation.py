"""Each loaded package has its own modules: two packages with a `utils.py` each never share one."""

from __future__ import annotations

import pickle
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import packager
from packager import ModelImportError

MODEL = """
import utils
from utils import NAME
from helpers import describe
from helpers.deep import DEPTH


class Model:
    def __init__(self):
        utils.COUNT += 1
        self.count = utils.COUNT

    def predict(self, inputs):
        import utils as late  # imported at predict time, inside a function
        from helpers.deep import where

        return {"name": NAME, "late": late.NAME, "helpers": describe(), "where": where(), "depth": DEPTH,
                "count": self.count, "same": late is utils}
"""


def write_package(root: Path, name: str, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    (root / "package.yaml").write_text(f"spec_version: 1\nname: {name}\n")
    for file, text in files.items():
        (root / file).parent.mkdir(parents=True, exist_ok=True)
        (root / file).write_text(textwrap.dedent(text))
    return root


def helper_package(root: Path, name: str) -> Path:
    return write_package(
        root,
        name,
        {
            "model.py": MODEL,
            "utils.py": f"NAME = {name!r}\nCOUNT = 0\n",
            "helpers/__init__.py": "from . import deep\nfrom .deep import where\n\n"
            "def describe():\n    return 'helpers of ' + where()\n",
            "helpers/deep.py": "import utils\nDEPTH = 2\n\ndef where():\n    return utils.NAME\n",
        },
    )


def package_modules(handle: packager.ModelHandle) -> set[str]:
    prefix = type(handle.model).__module__
    return {name for name in sys.modules if name == prefix or name.startswith(prefix + ".")}


def test_two_packages_each_run_their_own_helpers(tmp_path: Path) -> None:
    path_before = list(sys.path)
    pa = packager.load(helper_package(tmp_path / "pa", "pa"))
    pb = packager.load(helper_package(tmp_path / "pb", "pb"))
    for handle, name in ((pa, "pa"), (pb, "pb")):
        assert handle.predict({}) == {
            "name": name,
            "late": name,
            "helpers": f"helpers of {name}",
            "where": name,
            "depth": 2,
            "count": 1,
            "same": True,
        }
    assert sys.path == path_before
    leaked = {"utils", "helpers", "helpers.deep", "model"} & set(sys.modules)
    assert not leaked
    assert package_modules(pa).isdisjoint(package_modules(pb))


def test_the_same_package_loaded_twice_shares_no_state(tmp_path: Path) -> None:
    root = helper_package(tmp_path / "pa", "pa")
    first, second = packager.load(root), packager.load(root)
    assert (first.predict({})["count"], second.predict({})["count"]) == (1, 1)
    assert type(first.model) is not type(second.model)


def test_lazy_imports_from_threads_the_model_starts(tmp_path: Path) -> None:
    model = """
    import threading

    class Model:
        def predict(self, inputs):
            found = []
            def work():
                from utils import NAME
                found.append(NAME)
            thread = threading.Thread(target=work)
            thread.start()
            thread.join()
            return found[0]
    """
    pa = packager.load(write_package(tmp_path / "pa", "pa", {"model.py": model, "utils.py": "NAME = 'a'\n"}))
    pb = packager.load(write_package(tmp_path / "pb", "pb", {"model.py": model, "utils.py": "NAME = 'b'\n"}))
    assert (pa.predict(None), pb.predict(None), pa.predict(None)) == ("a", "b", "a")


def test_types_from_helper_modules_work_with_pydantic_dataclasses_and_pickle(tmp_path: Path) -> None:
    types_module = """
    from __future__ import annotations

    import dataclasses
    from pydantic import BaseModel


    class Request(BaseModel):
        text: str
        point: Point | None = None


    class Point(BaseModel):
        x: int


    @dataclasses.dataclass
    class Box:
        size: int
        label: str = "box"
    """
    model = """
    from __future__ import annotations

    import pickle
    import typing

    from pydantic import BaseModel

    from shapes import Box, Request


    class Response(BaseModel):
        text: str
        boxed: int


    class Model:
        def predict(self, inputs: Request) -> Response:
            box = pickle.loads(pickle.dumps(Box(len(inputs.text))))
            assert typing.get_type_hints(Box) == {"size": int, "label": str}
            return Response(text=inputs.text, boxed=box.size)
    """
    handle = packager.load(write_package(tmp_path / "p", "p", {"model.py": model, "shapes.py": types_module}))
    assert handle.predict({"text": "abc", "point": {"x": 1}}).boxed == 3
    assert handle.schema()["input"]["title"] == "Request"
    with pytest.raises(packager.InputError, match=r"point\.x"):
        handle.predict({"text": "a", "point": {"x": "no"}})


class Thing:
    """Pickled as `utils.Thing`, as a training script that imported utils.py would have."""

    def __init__(self, value: int) -> None:
        self.value = value


def pickled_as_utils_thing(value: int) -> bytes:
    fake = type(sys)("utils")
    fake.Thing = Thing  # type: ignore[attr-defined]
    original = Thing.__module__
    Thing.__module__ = "utils"
    sys.modules["utils"] = fake
    try:
        return pickle.dumps(Thing(value))
    finally:
        del sys.modules["utils"]
        Thing.__module__ = original


def test_pickles_naming_helper_modules_load_while_the_model_loads(tmp_path: Path) -> None:
    (tmp_path / "thing.pkl").write_bytes(pickled_as_utils_thing(7))
    model = f"""
    import pickle

    class Model:
        def load(self):
            with open({str(tmp_path / "thing.pkl")!r}, "rb") as f:
                self.thing = pickle.load(f)

        def predict(self, inputs):
            return [type(self.thing).__module__.endswith(".utils"), self.thing.value, self.thing.tag()]
    """
    utils = "class Thing:\n    def tag(self):\n        return 'from ' + __name__.rpartition('.')[2]\n"
    handle = packager.load(write_package(tmp_path / "p", "p", {"model.py": model, "utils.py": utils}))
    assert handle.predict(None) == [True, 7, "from utils"]
    assert "utils" not in sys.modules


def test_close_forgets_the_package_modules(tmp_path: Path) -> None:
    handle = packager.load(helper_package(tmp_path / "pa", "pa"))
    modules = package_modules(handle)
    assert len(modules) == 4  # the model file, utils, helpers, helpers.deep
    handle.close()
    assert modules.isdisjoint(sys.modules)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "import helpers.nothere\n",
            "model.py line 1: the package has no module 'helpers.nothere'; add it or fix the import",
        ),
        (
            "from helpers import nothere\n",
            "model.py line 1: cannot import name 'nothere' from 'helpers' (HERE); fix the import",
        ),
    ],
)
def test_a_missing_module_of_the_package_is_named_as_the_model_spells_it(
    tmp_path: Path, source: str, message: str
) -> None:
    root = write_package(tmp_path / "p", "p", {"model.py": source, "helpers/__init__.py": ""})
    with pytest.raises(ModelImportError) as info:
        packager.load(root)
    assert str(info.value) == message.replace("HERE", str(root / "helpers" / "__init__.py"))


def test_errors_in_helper_subpackages_name_their_file(tmp_path: Path) -> None:
    files = {
        "model.py": "import helpers\n",
        "helpers/__init__.py": "from .deep import X\n",
        "helpers/deep.py": "X = (\n",
    }
    with pytest.raises(ModelImportError) as info:
        packager.load(write_package(tmp_path / "p", "p", files))
    assert (info.value.file, info.value.line) == ("helpers/deep.py", 1)


def test_a_failed_import_leaves_no_modules_behind(tmp_path: Path) -> None:
    before = set(sys.modules)
    files = {"model.py": "import utils\nraise RuntimeError('late')\n", "utils.py": "X = 1\n"}
    with pytest.raises(
        ModelImportError, match=r"^model.py line 2: importing the model raised RuntimeError: late$"
    ):
        packager.load(write_package(tmp_path / "p", "p", files))
    assert {name for name in set(sys.modules) - before if name.startswith("packager_model_")} == set()


def test_installed_modules_still_win_over_bare_directories(tmp_path: Path) -> None:
    # A data directory named like an installed package is not a module of the package.
    files = {
        "model.py": "import json\nclass Model:\n    def predict(self, x):\n        return json.dumps(x)\n"
    }
    root = write_package(tmp_path / "p", "p", files)
    (root / "json").mkdir()
    assert packager.load(root).predict([1]) == "[1]"


def test_loading_two_packages_at_once_from_threads(tmp_path: Path) -> None:
    roots = [helper_package(tmp_path / f"p{i}", f"p{i}") for i in range(4)]
    results: dict[int, Any] = {}

    def load(i: int) -> None:
        results[i] = packager.load(roots[i]).predict({})["name"]

    threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == {i: f"p{i}" for i in range(4)}


def test_relative_imports_from_the_model_file_and_import_module(tmp_path: Path) -> None:
    model = """
    import importlib

    from . import utils
    from .utils import NAME


    class Model:
        def predict(self, inputs):
            late = importlib.import_module(".utils", __package__)
            return [utils.NAME, NAME, late is utils]
    """
    files = {"model.py": model, "utils.py": "NAME = 'rel'\n"}
    assert packager.load(write_package(tmp_path / "p", "p", files)).predict(None) == ["rel", "rel", True]
