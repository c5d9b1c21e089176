"""The deployment facts: a small, flat record computed once from the spec and the options.

Every target (Kubernetes, KServe, compose) builds its documents from these facts alone, so the
rules (how long a pod may take to start, how long it may take to stop, which node labels pick a
GPU) live here, once, and are tested here.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from typing import Any, Optional

from packager._errors import PackagerError
from packager._secrets import env_name
from packager._spec_load import Package

PORT = 8080  # the image's PORT (docs/building.md)
LIVE_PATH = "/"  # liveness: answers while the process runs (docs/serving.md)
METRICS_PATH = "/metrics"
QUEUE_METRIC = "packager_queue_depth"  # packager/_server/_metrics.py
UID = 1000  # the image's user `app`
STARTUP_PERIOD_S = 10
STARTUP_DEFAULT_S = {"cpu": 600, "gpu": 1800}  # weights may be fetched at start; GPU models are big
GRACE_MARGIN_S = 10  # beyond runtime.shutdown_grace_s: the server's own exit after the grace period
SCHEMES = ("gke", "eks", "gpu-operator")
SECRETS_AS = ("env", "volume")
SECRETS_MOUNT = "/secrets"


@dataclass(frozen=True)
class DeployOptions:
    """What `pkg deploy` was asked for, beyond the spec."""

    image: str
    replicas: int = 1
    max_replicas: Optional[int] = None
    namespace: Optional[str] = None
    hpa: Optional[str] = None  # "cpu" or "queue"
    pdb: bool = False
    node_labels: str = "gpu-operator"
    node_selector: dict[str, str] = field(default_factory=dict)  # replaces the table's labels
    secret_name: Optional[str] = None
    secrets_as: str = "env"
    startup_timeout_s: Optional[int] = None
    host: str = "127.0.0.1"  # compose: the address published ports bind to


@dataclass(frozen=True)
class Facts:
    """Everything a manifest needs, flat."""

    name: str  # the package name (paths, label values)
    resource_name: str  # a DNS-1035 label made from it (object names)
    image: str
    namespace: Optional[str]
    replicas: int
    max_replicas: int
    cpu: str
    memory: str
    gpu_count: int
    node_selector: dict[str, str]
    tolerations: list[dict[str, str]]
    secrets: dict[str, str]  # secret name -> environment variable
    secret_name: str
    secrets_as: str
    ready_path: str
    grace_s: int
    startup_s: int
    probe_timeout_s: int  # readiness asks is_healthy(), which may take runtime.health_timeout_s
    request_timeout_s: int
    concurrency: int
    hpa: Optional[str]
    pdb: bool
    host: str
    labels: dict[str, str]
    selector: dict[str, str]

    @property
    def startup_failures(self) -> int:
        """The startup probe's failureThreshold: startup_s in periods of STARTUP_PERIOD_S."""
        return math.ceil(self.startup_s / STARTUP_PERIOD_S)


def deployment_facts(package: Package, options: DeployOptions) -> Facts:
    """The facts for `package` deployed with `options`; PackagerError for a bad combination."""
    spec, resources = package.spec, package.spec.resources
    _check_options(options)
    gpus = resources.gpu_count
    name = resource_name(spec.name)
    label = spec.name if len(spec.name) <= 63 else name  # label values are at most 63 characters
    selector = {"app.kubernetes.io/name": label, "app.kubernetes.io/instance": name}
    startup_s = options.startup_timeout_s or STARTUP_DEFAULT_S["gpu" if gpus else "cpu"]
    return Facts(
        name=spec.name,
        resource_name=name,
        image=options.image,
        namespace=options.namespace,
        replicas=options.replicas,
        max_replicas=options.max_replicas or options.replicas * 4,
        cpu=resources.cpu,
        memory=resources.memory,
        gpu_count=gpus,
        node_selector=node_selector(resources.gpu_type, options),
        tolerations=[dict(table()["toleration"])] if gpus else [],
        secrets={secret: env_name(secret) for secret in spec.secrets},
        secret_name=options.secret_name or f"{name}-secrets",
        secrets_as=options.secrets_as,
        ready_path=f"/v1/models/{spec.name}",
        grace_s=math.ceil(spec.runtime.shutdown_grace_s) + GRACE_MARGIN_S,
        startup_s=startup_s,
        probe_timeout_s=math.ceil(spec.runtime.health_timeout_s) + 1,
        request_timeout_s=math.ceil(spec.runtime.request_timeout_s),
        concurrency=spec.runtime.predict_concurrency,
        hpa=options.hpa,
        pdb=options.pdb,
        host=options.host,
        labels={
            **selector,
            "app.kubernetes.io/component": "model-server",
            "app.kubernetes.io/managed-by": "packager",
        },
        selector=selector,
    )


def _check_options(options: DeployOptions) -> None:
    if options.replicas < 1:
        raise PackagerError(f"--replicas must be 1 or more, not {options.replicas}")
    if options.max_replicas is not None and options.max_replicas < options.replicas:
        raise PackagerError(f"--max-replicas {options.max_replicas} is below --replicas {options.replicas}")
    if options.hpa not in (None, "cpu", "queue"):
        raise PackagerError(f"unknown --hpa {options.hpa!r}; use cpu or queue")
    if options.node_labels not in SCHEMES:
        raise PackagerError(f"unknown --node-labels {options.node_labels!r}; use one of {', '.join(SCHEMES)}")
    if options.secrets_as not in SECRETS_AS:
        raise PackagerError(f"unknown --secrets-as {options.secrets_as!r}; use env or volume")
    if options.startup_timeout_s is not None and options.startup_timeout_s < STARTUP_PERIOD_S:
        raise PackagerError(f"--startup-timeout must be at least {STARTUP_PERIOD_S} seconds")


def resource_name(name: str) -> str:
    """A Kubernetes object name (DNS-1035 label) for a package name: 'my_model.v2' -> 'my-model-v2'."""
    text = re.sub(r"[^a-z0-9-]+", "-", name.lower())
    text = re.sub(r"^[^a-z]+|-+$", "", text)[:63].rstrip("-")
    return text or "model"


def node_selector(gpu_type: Optional[str], options: DeployOptions) -> dict[str, str]:
    """The labels that pick a node for `gpu_type`: --node-selector if given, else the table's."""
    if options.node_selector:
        return dict(options.node_selector)
    if gpu_type is None:
        return {}
    scheme = options.node_labels
    value = table()["accelerators"][gpu_type][scheme]
    if value is None:
        raise PackagerError(
            f"{gpu_type} has no {scheme} node label in packager's table; "
            "pick another --node-labels or give --node-selector KEY=VALUE"
        )
    return {table()["schemes"][scheme]["key"]: value}


def parse_selector(pairs: tuple[str, ...]) -> dict[str, str]:
    """`--node-selector K=V` options as a mapping; PackagerError for a pair without '='."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PackagerError(f"--node-selector {pair!r}: expected KEY=VALUE")
        out[key] = value
    return out


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    """data/accelerators.json, as shipped in the wheel."""
    text = (files("packager._deploy") / "data" / "accelerators.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data
