"""Ray Serve: run a package as a Ray Serve application, each replica with the same pipeline.

    from ray import serve
    from packager.integrations.ray import deployment

    serve.run(deployment("path/to/package", num_replicas=2), route_prefix="/")

Each replica serves the package's own HTTP API (the same as `pkg serve`: KServe V1 and V2,
streaming, /metrics) behind Ray's proxy. `app_builder` is what a Serve config file written
by `pkg deploy --target ray` (`write_ray`) names as its import_path. See docs/deploy.md.

Importing this module does not import ray; `deployment` and `app_builder` do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from packager._deploy._ray import RayOptions, deployment_options, write_ray
from packager._errors import PackagerError
from packager._spec_load import read_package

if TYPE_CHECKING:
    from ray.serve import Application

__all__ = ["RayOptions", "app_builder", "deployment", "write_ray"]


def deployment(path: str | Path, **overrides: Any) -> Application:
    """The package at `path` as a Ray Serve application, ready for `serve.run`.

    Replicas, resources and limits come from the spec (see `RayOptions` for the overrides:
    num_replicas, min_replicas/max_replicas for autoscaling, num_cpus, num_gpus, memory,
    max_ongoing_requests, health_check_period_s, batching="packager"|"ray", name).
    """
    from ray import serve

    from packager._deploy._ray_replica import PackageReplica

    try:
        options = RayOptions(**overrides)
    except TypeError as exc:
        raise PackagerError(f"unknown Ray Serve option: {exc}") from None
    package = read_package(path)
    settings = deployment_options(package.spec, options)
    return serve.deployment(**settings)(PackageReplica).bind(str(package.root), options.batching)


def app_builder(args: dict[str, Any]) -> Application:
    """Build the application from a Serve config's `args`: {path: ..., batching: ..., overrides}."""
    options = dict(args)
    path = options.pop("path", None)
    if not path:
        raise PackagerError("the Serve config's args must name the package: args: {path: /path/to/package}")
    return deployment(path, **options)
