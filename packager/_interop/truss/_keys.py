"""Which config.yaml keys Truss knows, which packager rejects or only warns about (keys.json)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from packager._errors import SpecIssue

_TABLE: dict[str, Any] = json.loads((Path(__file__).parent / "keys.json").read_text(encoding="utf-8"))
REJECTED: dict[str, list[str]] = _TABLE["rejected"]
WARNED: dict[str, str] = _TABLE["warned"]
DEFAULTS: dict[str, Any] = _TABLE["defaults"]

TOP = (
    "model_name", "description", "model_metadata", "examples_filename", "python_version",
    "requirements", "requirements_file", "system_packages", "environment_variables", "secrets",
    "resources", "runtime", "build", "build_commands", "base_image", "docker_server",
    "external_data", "model_cache", "hf_cache", "weights", "trt_llm", "training_checkpoints",
    "bis_llm", "bdn", "data_dir", "bundled_packages_dir", "external_package_dirs",
    "model_module_dir", "model_class_filename", "model_class_name", "live_reload",
    "apply_library_patches", *_TABLE["inert"],
)  # fmt: skip
SECTIONS: dict[str, tuple[str, ...]] = {
    "resources": ("cpu", "memory", "accelerator", "use_gpu", "instance_type", "node_count", "fabric"),
    "runtime": (
        "predict_concurrency", "streaming_read_timeout", "enable_tracing_data", "enable_debug_logs",
        "transport", "is_websocket_endpoint", "health_checks", "oidc", "remote_ssh",
        "egress_restrictions", "truss_server_version_override", "num_workers",
    ),
    "build": ("model_server", "arguments", "secret_to_path_mapping", "no_cache"),
    "base_image": ("image", "python_executable_path", "docker_auth"),
    "docker_server": (
        "start_command", "server_port", "predict_endpoint", "readiness_endpoint",
        "liveness_endpoint", "run_as_user_id", "no_build",
    ),
}  # fmt: skip


def is_set(key: str, value: Any) -> bool:
    """Whether `value` asks for something: not empty, not false, not Truss's default."""
    if value is None or value is False or value == {} or value == [] or value == "":
        return False
    return not (key in DEFAULTS and DEFAULTS[key] == value)


def flat(config: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Each top-level key, and each key of the known sections as 'section.key'."""
    for key, value in config.items():
        yield str(key), value
        if key in SECTIONS and isinstance(value, dict):
            for sub, inner in value.items():
                yield f"{key}.{sub}", inner


def unknown_issues(config: dict[str, Any], shown: str) -> Iterator[SpecIssue]:
    """Keys Truss does not know either (it rejects them at push: 'Extra fields not allowed')."""
    for key, value in config.items():
        if str(key) not in TOP:
            yield SpecIssue(shown, str(key), value, _unknown(str(key), TOP))
        elif key in SECTIONS and isinstance(value, dict):
            for sub, inner in value.items():
                if str(sub) not in SECTIONS[key]:
                    yield SpecIssue(shown, f"{key}.{sub}", inner, _unknown(str(sub), SECTIONS[key]))


def _unknown(key: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else "remove it (see docs/truss.md for the keys)"
    return f"not a Truss config key (Truss rejects it too); {hint}"


def rejected_issues(config: dict[str, Any], shown: str) -> Iterator[SpecIssue]:
    """The keys packager cannot honour: what each does in Truss and what to do instead."""
    for key, value in flat(config):
        if key in REJECTED and is_set(key, value):
            does, instead = REJECTED[key]
            yield SpecIssue(shown, key, None, f"not supported by packager: in Truss it {does}; {instead}")


def warned_keys(config: dict[str, Any]) -> list[str]:
    """The keys set here that have no effect outside Baseten."""
    return [key for key, value in flat(config) if key in WARNED and is_set(key, value)]
