"""The package spec (`package.yaml`), as pydantic v2 models.

Every model forbids unknown keys and is frozen. Validators raise
`PydanticCustomError` whose message already carries the remedy, so
`_spec_load` can show it to users as is; reading the file, turning pydantic
errors into `SpecIssue`s and the checks that need the file system live there.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from packager._errors import PackagerError
from packager._requirements import requirement_problem
from packager._spec_base import _fail, _Strict
from packager._spec_build import Build
from packager._spec_runtime import Runtime
from packager._spec_server import Server, check_server
from packager._weights import WeightSource, parse_weight_source

ACCELERATORS = ("T4", "L4", "A10G", "A100", "A100-80GB", "H100", "H200")
PYTHON_VERSIONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
_MEMORY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$")
_CPU = re.compile(r"^([0-9]+(\.[0-9]+)?|[0-9]+m)$")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _requirement(value: str) -> str:
    problem = requirement_problem(value)
    if problem is not None:
        raise _fail("requirement", problem)
    return value


RequirementLine = Annotated[str, AfterValidator(_requirement)]


def _weights_items_schema(schema: dict[str, Any]) -> None:
    # Each item may also be written as a bare source string (the shorthand parse_weight_source accepts).
    shorthand = {"type": "string", "description": "Shorthand for {source: ...}."}
    schema["items"] = {"anyOf": [shorthand, schema["items"]]}


class Resources(_Strict):
    """What one replica needs. Used to pick the base image and by deploy targets."""

    cpu: str = Field("1", description="CPU cores: '2', '0.5' or '500m'.")
    memory: str = Field("2Gi", description="Memory, Kubernetes style: '512Mi', '16Gi'.")
    accelerator: str | None = Field(
        None, description="GPU type, optionally with a count: 'A10G', 'A100:2'. Omit for CPU."
    )
    gpu_memory: str | None = Field(None, description="Minimum GPU memory, e.g. '24Gi'.")

    @field_validator("cpu", mode="before")
    @classmethod
    def _cpu(cls, value: Any) -> str:
        text = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        if not isinstance(text, str) or not _CPU.match(text) or text in ("0", "0m"):
            raise _fail("cpu", "expected a positive CPU count such as '2', '0.5' or '500m'")
        return text

    @field_validator("memory", "gpu_memory")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        if value is not None and not _MEMORY.match(value):
            raise _fail("memory", "expected a size such as '512Mi' or '16Gi' (units Ki, Mi, Gi, Ti)")
        return value

    @field_validator("accelerator")
    @classmethod
    def _accelerator(cls, value: str | None) -> str | None:
        if value is None:
            return None
        kind, _, count = value.partition(":")
        canonical = {a.upper(): a for a in ACCELERATORS}.get(kind.strip().upper())
        if canonical is None or (count and (not count.isdigit() or int(count) < 1)):
            raise _fail(
                "accelerator",
                "unknown accelerator; use one of "
                + ", ".join(ACCELERATORS)
                + ", optionally with a count such as 'A100:2'",
            )
        return f"{canonical}:{int(count)}" if count else canonical

    @property
    def gpu_type(self) -> str | None:
        """The accelerator without its count, or None for CPU."""
        return self.accelerator.partition(":")[0] if self.accelerator else None

    @property
    def gpu_count(self) -> int:
        """How many GPUs the accelerator asks for (0 for CPU)."""
        if not self.accelerator:
            return 0
        _, _, count = self.accelerator.partition(":")
        return int(count) if count else 1


class ModelRef(_Strict):
    """Where the model class lives, relative to the package directory."""

    file: str = Field("model.py", description="Python file holding the model class.")
    class_name: str = Field("Model", alias="class", description="Name of the model class.")

    @field_validator("file")
    @classmethod
    def _file(cls, value: str) -> str:
        if not value.endswith(".py") or value.startswith("/") or ".." in value.split("/"):
            raise _fail("model_file", "expected a .py file inside the package, e.g. 'model.py'")
        return value

    @field_validator("class_name")
    @classmethod
    def _class(cls, value: str) -> str:
        if not value.isidentifier():
            raise _fail("class_name", "expected a Python class name, e.g. 'Model'")
        return value


class Example(_Strict):
    """A named example input, optionally with the output it must give."""

    name: str = Field(description="Used by `pkg predict --example NAME` and the tests.")
    input: Any = Field(description="The input, as it would be sent in a request body.")
    output: Any = Field(None, description="The expected output; checked by `pkg test` and CI.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9_.-]+$", value):
            raise _fail("example_name", "use letters, digits, '.', '_' and '-' only")
        return value


class Spec(_Strict):
    """A model package: what to install, which class to load, how to serve it."""

    spec_version: Literal[1] = Field(description="Always 1 for this format.")
    name: str = Field(description="Lower-case package name: letters, digits, '.', '_', '-'.")
    description: str = Field("", description="One line about the model.")
    python_version: str = Field("3.11", description="Python in the image: '3.9' to '3.13'.")
    requirements: list[RequirementLine] = Field(
        default_factory=list, description="pip requirement lines (PEP 508), e.g. 'torch>=2.1'."
    )
    requirements_file: str | None = Field(None, description="A requirements.txt in the package.")
    system_packages: list[str] = Field(default_factory=list, description="Debian package names.")
    environment: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variables for the model; load() and pkg serve set them unless already set.",
    )
    secrets: list[str] = Field(default_factory=list, description="Secret names (never values).")
    resources: Resources = Field(default_factory=Resources)  # type: ignore[arg-type]
    model: ModelRef = Field(default_factory=ModelRef)  # type: ignore[arg-type]
    weights: list[WeightSource] = Field(
        default_factory=list,
        description="Weight sources: a source string, or a mapping with source, dir, sha256, fetch...",
        json_schema_extra=_weights_items_schema,
    )
    runtime: Runtime = Field(default_factory=Runtime)  # type: ignore[arg-type]
    examples: list[Example] = Field(default_factory=list, description="Named example inputs.")
    build: Build = Field(default_factory=Build)  # type: ignore[arg-type]
    server: Server | None = Field(
        None, description="Run an existing HTTP inference server as the model (no model.py); docs/server.md."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise _fail("name", "use 1-64 lower-case letters, digits, '.', '_' or '-', e.g. 'my-model'")
        return value

    @field_validator("python_version", mode="before")
    @classmethod
    def _python(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise _fail("python_version", 'quote the version so YAML keeps it text, e.g. "3.11"')
        if value not in PYTHON_VERSIONS:
            raise _fail("python_version", "use one of " + ", ".join(PYTHON_VERSIONS))
        return value

    @field_validator("environment", mode="before")
    @classmethod
    def _environment(cls, value: Any) -> Any:
        if isinstance(value, dict):
            bad = [k for k in value if not isinstance(k, str) or not _ENV_NAME.match(k)]
            if bad:
                raise _fail("environment", f"{bad[0]!r} is not a valid variable name")
            return {k: _env_text(v) for k, v in value.items()}
        return value

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.match(r"^[A-Za-z0-9_.-]+$", name):
                raise _fail("secret_name", f"{name!r}: use letters, digits, '.', '_' and '-' only")
        if len(set(value)) != len(value):
            raise _fail("secrets_dupe", "each secret name may appear only once")
        return value

    @field_validator("runtime", mode="before")
    @classmethod
    def _api_key_declared(cls, value: Any, info: ValidationInfo) -> Any:
        secret = value.get("api_key_secret") if isinstance(value, dict) else None
        declared = info.data.get("secrets")
        if isinstance(secret, str) and declared is not None and secret not in declared:
            raise _fail(
                "api_key_secret",
                f"api_key_secret {secret!r} is not a declared secret; add '- {secret}' under 'secrets:'",
            )
        return value

    @field_validator("requirements_file")
    @classmethod
    def _requirements_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("requirements"):
            raise _fail("requirements", "use either requirements or requirements_file, not both")
        return value

    @field_validator("weights", mode="before")
    @classmethod
    def _weights_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [parse_weight_source(item) for item in value]
        return value

    @field_validator("weights")
    @classmethod
    def _weights_unique(cls, value: list[WeightSource], info: ValidationInfo) -> list[WeightSource]:
        _unique([w.dir for w in value], "weights", "two weight sources land in the same dir")
        declared = info.data.get("secrets")
        for w in value:
            if w.secret is not None and declared is not None and w.secret not in declared:
                raise _fail(
                    "weights_secret",
                    f"weights {w.dir}: secret {w.secret!r} is not declared; add '- {w.secret}' under 'secrets:'",
                )
        return value

    @field_validator("server")
    @classmethod
    def _server(cls, value: Server | None, info: ValidationInfo) -> Server | None:
        return check_server(value, info.data)

    @field_validator("examples")
    @classmethod
    def _examples_unique(cls, value: list[Example]) -> list[Example]:
        _unique([e.name for e in value], "examples", "two examples share a name")
        return value

    def example(self, name: str) -> Example | None:
        """The example called `name`, or None."""
        return next((e for e in self.examples if e.name == name), None)

    def require_example(self, name: str) -> Example:
        """The example called `name`; PackagerError listing the known names when there is none."""
        found = self.example(name)
        if found is None:
            names = ", ".join(e.name for e in self.examples) or "none defined"
            raise PackagerError(f"no example named {name!r} in package.yaml (examples: {names})")
        return found


def _env_text(value: Any) -> Any:
    # YAML turns `DEBUG: 1` into an int; environment values are text, so accept scalars.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, (int, float)) else value


def _unique(values: list[str], field: str, message: str) -> None:
    seen = {v for v in values if values.count(v) > 1}
    if seen:
        raise _fail(f"{field}_dupe", f"{message}: {sorted(seen)[0]!r}; give each a distinct name")


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema of `package.yaml`, as written to docs/spec.schema.json."""
    schema = Spec.model_json_schema(by_alias=True)
    schema["$id"] = "https://packager.dev/schema/package.schema.json"
    schema["title"] = "package.yaml"
    return schema
