"""Truss directories (config.yaml + model/model.py) read as packager packages, unchanged.

`read_truss` applies Truss's own rules to config.yaml, maps it onto the Spec
(docs/truss.md has the table), rejects the keys packager cannot honour and
warns, once, about those with no effect outside Baseten. Every problem comes
back at once in one SpecError naming the file, the key, the value and what to
write. Runtime side: the image reads the Truss directory it was built from.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from packager._errors import _MISSING, SpecError, SpecIssue
from packager._interop.truss._keys import rejected_issues, unknown_issues, warned_keys
from packager._interop.truss._map import ORIGIN, Mapper
from packager._interop.truss._origin import TrussOrigin
from packager._spec import Spec
from packager._spec_load import Package, _issue_from_pydantic
from packager._spec_yaml import load_yaml

CONFIG_FILE = "config.yaml"
_log = logging.getLogger("packager.truss")
_WARNED: set[str] = set()


def is_truss_dir(path: Path) -> bool:
    """A directory holding config.yaml (not a misnamed package.yaml: 'spec_version: 1') and no package.yaml."""
    config = path / CONFIG_FILE
    if not path.is_dir() or not config.is_file() or (path / "package.yaml").exists():
        return False
    try:
        head = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return True  # read_truss reports it
    return not (isinstance(head, dict) and head.get("spec_version") == 1)


def read_truss(root: Path) -> Package:
    """The Truss directory `root` as a validated Package (SpecError listing every problem)."""
    config_file = root / CONFIG_FILE
    shown = str(config_file)
    config, issues = _read_config(config_file, shown)
    issues += list(unknown_issues(config, shown)) + list(rejected_issues(config, shown))
    mapper = Mapper(config, root, shown)
    raw = mapper.run()
    issues += mapper.issues + _file_issues(raw, root, shown)
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as exc:
        issues += [_truss_path(_issue_from_pydantic(e, shown)) for e in exc.errors(include_url=False)]
        raise SpecError(shown, _unique(issues)) from None
    if issues:
        raise SpecError(shown, _unique(issues))
    _warn_once(shown, warned_keys(config))
    origin = TrussOrigin(root.resolve(), config, _import_paths(root.resolve(), config, spec))
    origin.import_paths()
    return Package(root=root.resolve(), spec_file=config_file.resolve(), spec=spec, origin=origin)


def _read_config(config_file: Path, shown: str) -> tuple[dict[str, Any], list[SpecIssue]]:
    try:
        raw, found = load_yaml(config_file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(
            shown, [SpecIssue(shown, where, _MISSING, "not valid YAML; fix the syntax there")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        message = f"cannot be read ({exc.__class__.__name__}); check the file is UTF-8 text"
        raise SpecError(shown, [SpecIssue(shown, "", _MISSING, message)]) from None
    if raw is None:
        raw = {}  # Truss reads an empty config.yaml as all defaults
    if not isinstance(raw, dict):
        raise SpecError(shown, [SpecIssue(shown, "", raw, "expected a mapping of Truss config keys")])
    return raw, [SpecIssue(shown, i.path, _MISSING, i.message) for i in found if "twice" in i.message]


def _file_issues(raw: dict[str, Any], root: Path, shown: str) -> list[SpecIssue]:
    issues = []
    model = raw.get("model")
    if isinstance(model, dict) and not (root / model["file"]).is_file():
        message = "no model class file here; create it (truss init writes one) or set model_module_dir"
        issues.append(SpecIssue(shown, "model_module_dir", model["file"], message))
    req_file = raw.get("requirements_file")
    if isinstance(req_file, str) and not (root / req_file).is_file():
        issues.append(SpecIssue(shown, "requirements_file", req_file, "file not found in the truss"))
    return issues


def _truss_path(issue: SpecIssue) -> SpecIssue:
    """A spec-field issue pointed at the config.yaml key it came from."""
    head, _, rest = issue.path.partition(".")
    top = head.split("[", 1)[0]
    if top == "weights" or top not in ORIGIN:
        return issue
    key = ORIGIN[top] if not rest else f"{ORIGIN[top].split('.')[0]}.{rest}"
    return SpecIssue(issue.file, key, issue.value, issue.message)


def _unique(issues: list[SpecIssue]) -> list[SpecIssue]:
    seen: list[SpecIssue] = []
    for issue in issues:
        if all((issue.path, issue.message) != (s.path, s.message) for s in seen):
            seen.append(issue)
    return seen


def _import_paths(root: Path, config: dict[str, Any], spec: Spec) -> list[Path]:
    paths = [(root / spec.model.file).parent] if spec.server is None else []
    paths.append(root / str(config.get("bundled_packages_dir") or "packages"))
    paths += [(root / str(p)).resolve() for p in config.get("external_package_dirs") or []]
    return paths


def _warn_once(shown: str, keys: list[str]) -> None:
    if keys and shown not in _WARNED:
        _WARNED.add(shown)
        _log.warning("%s: %s have no effect outside Baseten; ignored (docs/truss.md)", shown, ", ".join(keys))
