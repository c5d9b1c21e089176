"""config.yaml (Truss) onto package.yaml's fields: the values Truss accepts, mapped; the rest, issues."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from packager._errors import _MISSING, SpecIssue
from packager._interop.truss import _values as v
from packager._interop.truss._weights import weight_items

# Where each spec field came from in config.yaml, to point pydantic's complaints at the Truss key.
ORIGIN = {
    "name": "model_name", "python_version": "python_version", "requirements": "requirements",
    "requirements_file": "requirements_file", "system_packages": "system_packages",
    "environment": "environment_variables", "secrets": "secrets", "resources": "resources",
    "runtime": "runtime", "examples": "model_metadata.example_model_input", "build": "build_commands",
    "model": "model_module_dir", "server": "docker_server", "description": "description",
}  # fmt: skip


class Mapper:
    """Builds the spec mapping from a Truss config, collecting every problem on the way."""

    def __init__(self, config: dict[str, Any], root: Path, shown: str) -> None:
        self.config, self.root, self.shown = config, root, shown
        self.issues: list[SpecIssue] = []
        self.spec: dict[str, Any] = {"spec_version": 1}

    def issue(self, path: str, value: Any, message: str) -> None:
        self.issues.append(SpecIssue(self.shown, path, value, message))

    def run(self) -> dict[str, Any]:
        for step in (self._name, self._python, self._requirements, self._environment, self._secrets):
            step()
        for step in (self._resources, self._runtime, self._examples, self._build, self._model):
            step()
        self._server()
        self.spec["weights"] = weight_items(self.config, self.issue)
        self.spec["secrets"] = sorted(set(self.spec["secrets"]) | _weight_secrets(self.spec["weights"]))
        return self.spec

    def _get(self, key: str, kind: type, default: Any) -> Any:
        value = self.config.get(key, default)
        if value is None:
            return default
        if not isinstance(value, kind):
            names: dict[type, str] = {list: "a list", dict: "a mapping", str: "text"}
            what = names.get(kind, kind.__name__)
            self.issue(key, value, f"expected {what}")
            return default
        return value

    def _name(self) -> None:
        name = self._get("model_name", str, "") or self.root.name
        slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")[:64].strip("-._")
        self.spec["name"] = slug or "model"
        description = self._get("description", str, "")
        if description:
            self.spec["description"] = description.strip().splitlines()[0]

    def _python(self) -> None:
        version, problem = v.python_version(self.config.get("python_version", "py313"))
        if problem:
            self.issue("python_version", self.config.get("python_version"), problem)
        self.spec["python_version"] = version or "3.11"

    def _requirements(self) -> None:
        self.spec["requirements"] = [str(r) for r in self._get("requirements", list, [])]
        req_file = self._get("requirements_file", str, None)
        if req_file and self.spec["requirements"]:
            self.issue(
                "requirements_file", req_file, "use either requirements or requirements_file, not both"
            )
        elif req_file and not req_file.endswith(".txt"):
            self.issue(
                "requirements_file",
                req_file,
                "packager installs pip requirements files only; export it (uv export > requirements.txt)",
            )
        elif req_file:
            self.spec["requirements_file"] = str(Path(req_file))
        self.spec["system_packages"] = [str(p) for p in self._get("system_packages", list, [])]

    def _environment(self) -> None:
        env = self._get("environment_variables", dict, {})
        self.spec["environment"] = {
            str(k): ("true" if val is True else "false" if val is False else str(val))
            for k, val in env.items()
            if val is not None
        }

    def _secrets(self) -> None:
        secrets = self._get("secrets", dict, {})
        self.spec["secrets"] = [str(name) for name in secrets]

    def _resources(self) -> None:
        res = self._get("resources", dict, {})
        out: dict[str, Any] = {}
        for key, check in (("cpu", v.cpu), ("memory", v.memory)):
            if res.get(key) is not None:
                problem = check(res[key])
                if problem:
                    self.issue(f"resources.{key}", res[key], problem)
                else:
                    out[key] = str(res[key]) if key == "cpu" else v.memory_text(res[key])
        if res.get("accelerator") is not None:
            ours, problem = v.accelerator(res["accelerator"])
            if problem:
                self.issue("resources.accelerator", res["accelerator"], problem)
            out["accelerator"] = ours
        elif res.get("use_gpu") is True:
            self.issue(
                "resources.use_gpu",
                True,
                "use_gpu: true without an accelerator gives a CPU image in Truss; "
                "name the GPU, e.g. accelerator: A10G (or remove use_gpu)",
            )
        self.spec["resources"] = out

    def _runtime(self) -> None:
        runtime = self._get("runtime", dict, {})
        concurrency = runtime.get("predict_concurrency")
        if concurrency is not None:
            if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
                self.issue("runtime.predict_concurrency", concurrency, "expected a whole number, at least 1")
            else:
                self.spec["runtime"] = {"predict_concurrency": concurrency}

    def _examples(self) -> None:
        metadata = self._get("model_metadata", dict, {})
        if "example_model_input" in metadata:
            self.spec["examples"] = [
                {"name": "example_model_input", "input": metadata["example_model_input"]}
            ]

    def _build(self) -> None:
        build: dict[str, Any] = {"commands": [str(c) for c in self._get("build_commands", list, [])]}
        base = self._get("base_image", dict, {})
        if base:
            if not isinstance(base.get("image"), str) or not base["image"]:
                self.issue(
                    "base_image.image", base.get("image", _MISSING), "give the image, e.g. python:3.11-slim"
                )
            else:
                build["base_image"] = base["image"]
            exe = base.get("python_executable_path")
            if exe is not None and not str(exe).startswith("/"):
                self.issue(
                    "base_image.python_executable_path",
                    exe,
                    "must be an absolute path, e.g. /usr/bin/python3",
                )
        self.spec["build"] = build

    def _model(self) -> None:
        folder = self._get("model_module_dir", str, "model")
        filename = self._get("model_class_filename", str, "model.py")
        self.spec["model"] = {
            "file": f"{folder}/{filename}",
            "class": self._get("model_class_name", str, "Model"),
        }

    def _server(self) -> None:
        server = self._get("docker_server", dict, {})
        if not server:
            return
        if server.get("server_port") == 8080:
            self.issue(
                "docker_server.server_port", 8080, "8080 is reserved for the front server; use another port"
            )
        mapped = {
            "command": server.get("start_command", _MISSING),
            "predict_path": server.get("predict_endpoint"),
        }
        mapped.update(port=server.get("server_port"), readiness_path=server.get("readiness_endpoint"))
        mapped["liveness_path"] = server.get("liveness_endpoint")
        self.spec["server"] = {k: val for k, val in mapped.items() if val is not None and val is not _MISSING}
        self.spec.pop("model", None)  # the server is the model


def _weight_secrets(weights: list[dict[str, Any]]) -> set[str]:
    return {str(w["secret"]) for w in weights if w.get("secret")}
