"""Read package.yaml, validate it fully, and report every problem as one SpecError."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import BaseModel, ValidationError

from packager._errors import _MISSING, SpecError, SpecIssue
from packager._interop import Origin
from packager._requirements import requirement_lines, requirement_problem
from packager._spec import Spec
from packager._spec_server import server_file_issues
from packager._spec_yaml import load_yaml

SPEC_FILE = "package.yaml"


@dataclass(frozen=True)
class Package:
    """A package directory and its validated spec."""

    root: Path
    spec_file: Path
    spec: Spec
    origin: Optional[Origin] = None  # set when read from another tool's format (a Truss directory)


def read_package(path: str | Path) -> Package:
    """Load and validate the package at `path` (a directory or its package.yaml, or a Truss directory)."""
    from packager._interop.truss import is_truss_dir, read_truss  # it builds on this module

    if is_truss_dir(Path(path)) or (Path(path).name == "config.yaml" and is_truss_dir(Path(path).parent)):
        return read_truss(Path(path) if Path(path).is_dir() else Path(path).parent)
    spec_file = _find_spec_file(Path(path))
    root = spec_file.parent
    shown = str(spec_file)
    raw, issues = _read_yaml(spec_file, shown)  # first the problems only the YAML source shows
    on_disk = list(_file_issues(raw, root, shown))
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as exc:
        issues += [_issue_from_pydantic(err, shown) for err in exc.errors(include_url=False)]
        raise SpecError(shown, issues + on_disk) from None
    issues += on_disk
    if issues:
        raise SpecError(shown, issues)
    return Package(root=root.resolve(), spec_file=spec_file.resolve(), spec=spec)


def spec_path(path: str | Path) -> str:
    """The spec file of the package at `path` as messages show it (SpecError when there is none)."""
    from packager._interop.truss import CONFIG_FILE, is_truss_dir

    return str(Path(path) / CONFIG_FILE) if is_truss_dir(Path(path)) else str(_find_spec_file(Path(path)))


def _find_spec_file(path: Path) -> Path:
    if path.is_dir() and path.name != SPEC_FILE:
        candidate = path / SPEC_FILE
        if candidate.is_file():
            return candidate
        if candidate.is_dir():
            raise _one_issue(candidate, _SPEC_IS_A_DIRECTORY)
        near = sorted(p.name for p in path.glob("*.y*ml") if p.is_file())
        hint = f"; found {', '.join(near)}: rename it to {SPEC_FILE}" if near else ""
        raise _one_issue(candidate, f"no {SPEC_FILE} in this directory{hint}; `pkg new` creates one")
    if path.is_dir():
        raise _one_issue(path, _SPEC_IS_A_DIRECTORY)
    if path.is_file():
        if path.suffix.lower() in (".yaml", ".yml"):
            return path
        raise _one_issue(
            path, f"is a file, not a package; pass the package directory ({path.parent}) or its {SPEC_FILE}"
        )
    raise _one_issue(path, "no such file or directory; pass a package directory holding package.yaml")


_SPEC_IS_A_DIRECTORY = (
    f"is a directory, not a file; {SPEC_FILE} must be the package's spec file (`pkg new` creates one)"
)


def _one_issue(path: Path, message: str) -> SpecError:
    return SpecError(str(path), [SpecIssue(str(path), "", _MISSING, message)])


def _read_yaml(spec_file: Path, shown: str) -> tuple[Any, list[SpecIssue]]:
    """The YAML document, and the problems only its source shows (duplicate keys, ...)."""
    try:
        raw, found = load_yaml(spec_file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise SpecError(
            shown, [SpecIssue(shown, where, _MISSING, f"not valid YAML: {problem}; fix the syntax there")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(
            shown,
            [
                SpecIssue(
                    shown,
                    "",
                    _MISSING,
                    f"cannot be read ({exc.__class__.__name__}); check the file is UTF-8 text and readable",
                )
            ],
        ) from None
    if not isinstance(raw, dict):
        raise SpecError(
            shown,
            [
                SpecIssue(
                    shown,
                    "",
                    raw,
                    "expected a mapping of fields at the top level, starting with 'spec_version: 1'",
                )
            ],
        )
    return raw, [SpecIssue(shown, issue.path, _MISSING, issue.message) for issue in found]


def _file_issues(raw: dict[str, Any], root: Path, shown: str) -> Iterator[SpecIssue]:
    """Problems only the file system can reveal, checked on the raw values so they join pydantic's."""
    model = raw.get("model")
    model_file = model.get("file", "model.py") if isinstance(model, dict) else "model.py"
    if "server" in raw:  # the inner server is the model: no model file (_spec_server)
        yield from server_file_issues(raw, root, shown)
    elif isinstance(model_file, str) and model_file.endswith(".py") and not (root / model_file).is_file():
        yield SpecIssue(
            shown,
            "model.file",
            model_file,
            "file not found in the package; create it or point model.file at your model's .py file",
        )
    req_file = raw.get("requirements_file")
    if isinstance(req_file, str) and not (root / req_file).is_file():
        yield SpecIssue(
            shown,
            "requirements_file",
            req_file,
            "file not found in the package; create it or list requirements inline under 'requirements'",
        )
    elif isinstance(req_file, str):
        yield from _requirements_file_issues(root / req_file, str(Path(shown).parent / req_file))
    build = raw.get("build")
    wheelhouse = build.get("wheelhouse") if isinstance(build, dict) else None
    if isinstance(wheelhouse, str) and not (root / wheelhouse).is_dir():
        yield SpecIssue(
            shown,
            "build.wheelhouse",
            wheelhouse,
            "folder not found in the package; create it (pip download -d) or remove the field",
        )
    weights = raw.get("weights")
    for i, item in enumerate(weights if isinstance(weights, list) else []):
        source = item.get("source") if isinstance(item, dict) else item
        local = isinstance(source, str) and "://" not in source and source.strip() and source[0] != "/"
        if local and isinstance(source, str) and not (root / source).exists():
            yield SpecIssue(
                shown,
                f"weights[{i}].source",
                source,
                "local weights not found in the package; add them there or use an hf:// or https:// source",
            )


def _requirements_file_issues(path: Path, shown: str) -> Iterator[SpecIssue]:
    """Each requirement line of a requirements.txt that is not PEP 508 (pip options are skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        yield SpecIssue(
            shown, "", _MISSING, f"cannot be read ({exc.__class__.__name__}); check it is UTF-8 text"
        )
        return
    for number, line in requirement_lines(text):
        problem = requirement_problem(line)
        if problem is not None:
            yield SpecIssue(shown, f"line {number}", line, problem)


# Remedies for pydantic's built-in error types; our own validators carry theirs in the message.
_REMEDIES: dict[str, str] = {
    "missing": "required field is missing; add it",
    "string_type": "expected text; quote the value",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number, not a fraction",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "list_type": "expected a list (YAML '- item' lines)",
    "dict_type": "expected a mapping (YAML 'key: value' lines)",
    "model_type": "expected a mapping (YAML 'key: value' lines)",
    "model_attributes_type": "expected a mapping (YAML 'key: value' lines)",
}


def _issue_from_pydantic(err: Any, shown: str) -> SpecIssue:
    loc = tuple(err["loc"])
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input", _MISSING)
    if kind == "missing" or kind.endswith("_dupe"):
        value = _MISSING  # the message names the duplicate; the whole list would only be noise
    if kind == "extra_forbidden":
        message = _unknown_field_message(loc)
    elif kind == "literal_error":
        message = f"expected {ctx.get('expected')}"
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = {
            "greater_than": "above",
            "greater_than_equal": "at least",
            "less_than": "below",
            "less_than_equal": "at most",
        }[kind]
        limit = next(iter(ctx.values()), "")
        message = f"must be {bound} {limit}"
    elif kind in _REMEDIES:
        message = _REMEDIES[kind]
    elif "error" not in ctx and kind not in ("value_error", "assertion_error"):
        message = err["msg"]  # our PydanticCustomError messages: already phrased with a remedy
    else:
        message = "invalid value; see docs/spec.md for this field"
    return SpecIssue(shown, _dotted(loc), value, message)


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _unknown_field_message(loc: tuple[Any, ...]) -> str:
    fields = _fields_at(loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), fields, n=1, cutoff=0.6)
    if close:
        return f"unknown field; did you mean {close[0]!r}?"
    return "unknown field; valid fields here: " + ", ".join(fields)


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The field names (aliases where set) of the model found at `loc` under Spec."""
    model: type[BaseModel] | None = Spec
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        model = _model_in(field.annotation) if field else None
    if model is None:
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
