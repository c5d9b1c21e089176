"""package.yaml as YAML: parsed once, with the checks only the YAML source can answer.

`load_yaml` returns the data and the problems a plain ``yaml.safe_load``
would hide: a key given twice (YAML keeps the last one silently) and an
unquoted environment value YAML turns into something else (``0755`` into
493, ``yes`` into true, ``1.10`` into 1.1). The caller reports them with
the other spec problems.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from packager._spec import _env_text  # the conversion the spec applies to environment values

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlIssue(NamedTuple):
    """One problem found in the YAML source: the dotted field path and what to do."""

    path: str
    message: str


def load_yaml(text: str) -> tuple[Any, list[YamlIssue]]:
    """The document in `text` (as yaml.safe_load gives it) and the source-level problems found.

    Raises yaml.YAMLError for malformed YAML.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    if node is None:
        return data, []
    issues: list[YamlIssue] = []
    _duplicates(node, "", issues, set())
    issues += _environment_issues(node)
    return data, issues


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _duplicates(node: Node, path: str, issues: list[YamlIssue], seen_nodes: set[int]) -> None:
    if id(node) in seen_nodes:  # an alias met again (or a recursive one): already walked
        return
    seen_nodes.add(id(node))
    if isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            _duplicates(item, f"{path}[{i}]", issues, seen_nodes)
    elif isinstance(node, MappingNode):
        lines: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, ScalarNode) else "?"
            if isinstance(key_node, ScalarNode) and key_node.tag != _MERGE_TAG:
                line = key_node.start_mark.line + 1
                first = lines.get((key_node.tag, key))
                if first is None:
                    lines[(key_node.tag, key)] = line
                else:
                    where = f"on lines {first} and {line}" if first != line else f"on line {line}"
                    message = f"given twice, {where}; YAML keeps only the last one, so remove one"
                    issues.append(YamlIssue(_join(path, key), message))
            _duplicates(value_node, _join(path, key), issues, seen_nodes)


def _environment_issues(root: Node) -> list[YamlIssue]:
    """Unquoted environment values that would not reach the variable as written."""
    environment = _value_of(root, "environment")
    if not isinstance(environment, MappingNode):
        return []
    issues = []
    for key_node, value_node in environment.value:
        if not isinstance(value_node, ScalarNode) or value_node.style is not None:
            continue  # quoted, a block scalar, or not a scalar at all (pydantic reports that)
        if value_node.tag == _STR_TAG:
            continue
        value = yaml.constructor.SafeConstructor().construct_object(value_node)
        text, becomes = value_node.value, _env_text(value)
        if not isinstance(becomes, str) or becomes == text:
            continue  # null, dates...: not text at all, which the spec's own check reports
        name = str(key_node.value)
        kind = f"the boolean {str(value).lower()}" if isinstance(value, bool) else f"the number {value!r}"
        issues.append(
            YamlIssue(
                _join("environment", name),
                f"YAML reads {text} as {kind}, so {name} would be {becomes!r}; "
                f'quote the value so YAML keeps it text, e.g. {name}: "{text}"',
            )
        )
    return issues


def _value_of(mapping: Node, key: str) -> Node | None:
    if not isinstance(mapping, MappingNode):
        return None
    found = [v for k, v in mapping.value if isinstance(k, ScalarNode) and k.value == key]
    return found[-1] if found else None
