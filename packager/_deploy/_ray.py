"""Ray Serve: the deployment settings of a package, and the `serve deploy` config file.

Nothing here imports ray: `deployment_options` turns the spec (resources, runtime) plus
the user's overrides into the flat dict of Ray Serve deployment options, which both
`packager.integrations.ray.deployment()` (in a Ray driver) and `write_ray` (into a Serve
config file) use. The replica itself, which does import ray, is `_ray_replica.py`.

What comes from the spec:
- `ray_actor_options`: num_cpus from resources.cpu ('500m' → 0.5), num_gpus from the
  accelerator count, memory (bytes) from resources.memory;
- `max_ongoing_requests`: predict_concurrency * batching.max_batch_size, the most inputs
  one replica can work on at once (the replica's own queue, runtime.max_queue, takes more);
- `graceful_shutdown_timeout_s`: runtime.shutdown_grace_s;
- `health_check_timeout_s`: runtime.health_timeout_s plus a margin (check_health asks
  is_healthy() bounded by it);
- replicas: 1, or `autoscaling_config` when min_replicas/max_replicas is given, with
  target_ongoing_requests = predict_concurrency unless overridden.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from packager._deploy._output import write_files
from packager._errors import PackagerError
from packager._spec import Spec
from packager._spec_load import Package

APP_BUILDER = "packager.integrations.ray:app_builder"
CONFIG_FILE = "ray-serve.yaml"
HEALTH_MARGIN_S = 5.0
BATCHING = ("packager", "ray")
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_UNITS.update({"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40})
_MEMORY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([KMGT]i?)?$")


@dataclass(frozen=True)
class RayOptions:
    """Overrides of what the spec says; None keeps the spec's (or Ray's) value.

    `batching`: "packager" (the server's dynamic batcher, the default) or "ray" (Ray
    Serve's `@serve.batch`); both only matter for models with predict_batch.
    `host`/`port`: where the Serve HTTP proxy listens (the config file's http_options).
    """

    name: str | None = None
    num_replicas: int | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    target_ongoing_requests: float | None = None
    num_cpus: float | None = None
    num_gpus: float | None = None
    memory: int | None = None
    max_ongoing_requests: int | None = None
    health_check_period_s: float | None = None
    batching: Literal["packager", "ray"] = "packager"
    route_prefix: str = "/"
    host: str = "127.0.0.1"
    port: int = 8000

    def __post_init__(self) -> None:
        if self.batching not in BATCHING:
            raise PackagerError(f"unknown batching {self.batching!r}; use 'packager' or 'ray'")
        if self.num_replicas is not None and (self.min_replicas or self.max_replicas):
            raise PackagerError(
                "give either a fixed number of replicas or min_replicas/max_replicas (autoscaling), not both"
            )
        for field in ("num_replicas", "max_replicas", "max_ongoing_requests"):
            value = getattr(self, field)
            if value is not None and value < 1:
                raise PackagerError(f"{field} must be at least 1, not {value}")
        if self.min_replicas is not None and self.min_replicas < 0:
            raise PackagerError(f"min_replicas must be 0 or more, not {self.min_replicas}")


def cpu_count(text: str) -> float:
    """resources.cpu as a number of cores: '2' → 2.0, '500m' → 0.5."""
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory_bytes(text: str) -> int:
    """resources.memory in bytes: '512Mi' → 536870912, '2G' → 2000000000."""
    match = _MEMORY.match(text)
    if match is None:
        raise PackagerError(f"cannot read the memory size {text!r}; write it like '512Mi' or '16Gi'")
    return int(float(match.group(1)) * _UNITS[match.group(2) or ""])


def _pick(override: Any, default: Any) -> Any:
    return default if override is None else override


def actor_options(spec: Spec, options: RayOptions) -> dict[str, Any]:
    """`ray_actor_options` of each replica: CPUs, GPUs and memory from spec.resources."""
    resources = spec.resources
    return {
        "num_cpus": _pick(options.num_cpus, cpu_count(resources.cpu)),
        "num_gpus": _pick(options.num_gpus, resources.gpu_count),
        "memory": _pick(options.memory, memory_bytes(resources.memory)),
    }


def scaling(spec: Spec, options: RayOptions) -> dict[str, Any]:
    """`num_replicas`, or an `autoscaling_config` when min/max replicas are given."""
    if options.min_replicas is None and options.max_replicas is None:
        return {"num_replicas": _pick(options.num_replicas, 1)}
    low = _pick(options.min_replicas, 1)
    high = _pick(options.max_replicas, max(low, 1))
    if high < low:
        raise PackagerError(f"max_replicas ({high}) is below min_replicas ({low})")
    target = _pick(options.target_ongoing_requests, float(spec.runtime.predict_concurrency))
    return {
        "autoscaling_config": {
            "min_replicas": low,
            "max_replicas": high,
            "target_ongoing_requests": target,
        }
    }


def deployment_options(spec: Spec, options: RayOptions) -> dict[str, Any]:
    """Every Ray Serve deployment option packager sets, for `.options(**...)` and the config file."""
    runtime = spec.runtime
    settings: dict[str, Any] = {"name": options.name or spec.name}
    settings.update(scaling(spec, options))
    settings.update(
        max_ongoing_requests=_pick(
            options.max_ongoing_requests, runtime.predict_concurrency * runtime.batching.max_batch_size
        ),
        graceful_shutdown_timeout_s=runtime.shutdown_grace_s,
        health_check_timeout_s=runtime.health_timeout_s + HEALTH_MARGIN_S,
        ray_actor_options=actor_options(spec, options),
    )
    if options.health_check_period_s is not None:
        settings["health_check_period_s"] = options.health_check_period_s
    return settings


def serve_config(package: Package, options: RayOptions) -> dict[str, Any]:
    """The `serve deploy` / `serve run` config: one application built by `app_builder`."""
    name = options.name or package.spec.name
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": options.host, "port": options.port},
        "applications": [
            {
                "name": name,
                "route_prefix": options.route_prefix,
                "import_path": APP_BUILDER,
                "args": {"path": str(package.root), "batching": options.batching},
                "deployments": [deployment_options(package.spec, options)],
            }
        ],
    }


def write_ray(package: Package, options: RayOptions, out_dir: Path) -> list[Path]:
    """Write `ray-serve.yaml` into `out_dir` (replaced as a whole, see _output); return its path.

    Run it with `serve run ray-serve.yaml`, or `serve deploy ray-serve.yaml` on a running cluster.
    The package path in it must exist on every node of the cluster (a shared file system, or
    the same image on each node).
    """
    return write_files(Path(out_dir), {CONFIG_FILE: [serve_config(package, options)]})
