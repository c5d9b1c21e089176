"""`pkg deploy`: manifests that run a built image on Kubernetes, KServe, docker compose or Ray Serve.

Each target is one row of TARGETS: how to write its files from the package and the command's
arguments, and what to run next. A new target adds a row.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import click

from packager._deploy._apply import kubectl_apply
from packager._deploy._compose import write_compose
from packager._deploy._facts import SCHEMES, SECRETS_AS, DeployOptions, parse_selector
from packager._deploy._kserve import write_kserve
from packager._deploy._kubernetes import write_kubernetes
from packager._deploy._ray import RayOptions, write_ray
from packager._deploy._ray_run import run_serve
from packager._errors import PackagerError
from packager._spec_load import Package, read_package

_EPILOG = """\b
Examples:
  $ pkg deploy ./my-model --image registry.example.com/my-model:1 --target kserve
  $ pkg deploy ./my-model --image my-model:1 --target kubernetes --hpa queue --pdb --apply
  $ pkg deploy ./my-model --image my-model:1 --target compose --replicas 4"""


@dataclass(frozen=True)
class DeployArgs:
    """The command's arguments, for the targets' writers."""

    options: DeployOptions
    host: Optional[str]


@dataclass(frozen=True)
class Target:
    """A deploy target: its writer, the options only it takes, and the command to run next."""

    write: Callable[[Package, DeployArgs, Path], list[Path]]
    only: tuple[str, ...]  # options that make sense for this target alone
    next_step: str  # formatted with dir= and file=
    applies: bool = False  # --apply hands the folder to kubectl
    runs: bool = False  # --run hands the file to the engine's own CLI
    needs_image: bool = True  # ray runs the package's code in its replicas, not an image


def _ray(package: Package, args: DeployArgs, out_dir: Path) -> list[Path]:
    given, most, host = args.options.replicas, args.options.max_replicas, args.host or "127.0.0.1"
    if most:  # Ray Serve autoscaling between --replicas and --max-replicas
        return write_ray(package, RayOptions(min_replicas=given, max_replicas=most, host=host), out_dir)
    return write_ray(package, RayOptions(num_replicas=given, host=host), out_dir)


TARGETS: dict[str, Target] = {
    "kubernetes": Target(
        lambda package, args, out: write_kubernetes(package, args.options, out),
        ("hpa", "pdb", "secrets_as"),
        "kubectl apply -f {dir}",
        applies=True,
    ),
    "kserve": Target(
        lambda package, args, out: write_kserve(package, args.options, out),
        ("secrets_as",),
        "kubectl apply -f {dir}",
        applies=True,
    ),
    "compose": Target(
        lambda package, args, out: write_compose(package, args.options, out),
        ("host",),
        "docker compose -f {file} up -d",
    ),
    "ray": Target(_ray, ("host", "address"), "serve run {file}", runs=True, needs_image=False),
}


@click.command(epilog=_EPILOG)
@click.argument("path", default=".")
@click.option(
    "--image",
    metavar="IMAGE",
    help="The image to run (from `pkg build`/`pkg push`); every target but ray needs one.",
)
@click.option(
    "--target", required=True, type=click.Choice(list(TARGETS)), help="What to write manifests for."
)
@click.option(
    "--out",
    "out_dir",
    metavar="DIR",
    type=click.Path(path_type=Path),
    help="Folder to write [default: deploy/TARGET].",
)
@click.option(
    "--replicas",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Replicas (the HPA's or KServe's minimum; compose: one per replica's GPUs).",
)
@click.option(
    "--max-replicas",
    type=click.IntRange(1),
    help="Most replicas the autoscaler may run [default: 4 x --replicas].",
)
@click.option("--namespace", metavar="NS", help="Kubernetes namespace of every object [default: kubectl's].")
@click.option(
    "--hpa",
    type=click.Choice(["cpu", "queue"]),
    help="Add a HorizontalPodAutoscaler on CPU use or on the server's queue depth.",
)
@click.option("--pdb", is_flag=True, help="Add a PodDisruptionBudget (one pod evicted at a time).")
@click.option(
    "--node-labels",
    default="gpu-operator",
    show_default=True,
    type=click.Choice(list(SCHEMES)),
    help="Which node labels pick the spec's GPU type.",
)
@click.option(
    "--node-selector",
    multiple=True,
    metavar="KEY=VALUE",
    help="Node labels to require instead of the table's (repeatable).",
)
@click.option(
    "--secret-name",
    metavar="NAME",
    help="The Kubernetes Secret holding the spec's secrets [default: NAME-secrets].",
)
@click.option(
    "--secrets-as",
    default="env",
    show_default=True,
    type=click.Choice(list(SECRETS_AS)),
    help="Secrets as PACKAGER_SECRET_<NAME> variables or files under /secrets.",
)
@click.option(
    "--startup-timeout",
    type=click.IntRange(10),
    metavar="SECONDS",
    help="How long loading may take before the pod is restarted [default: 600, GPU specs 1800].",
)
@click.option(
    "--host", metavar="ADDR", help="compose, ray: the address ports are published on [default: 127.0.0.1]."
)
@click.option(
    "--apply",
    "apply_",
    is_flag=True,
    help="Run `kubectl apply -f DIR` afterwards (needs kubectl and a current context).",
)
@click.option(
    "--run",
    is_flag=True,
    help="ray: run the config afterwards (`serve run`, or `serve deploy` with --address).",
)
@click.option("--address", metavar="URL", help="ray: the cluster's dashboard address for `serve deploy`.")
def deploy(path: str, image: str | None, target: str, out_dir: Path | None, replicas: int, max_replicas: int | None,
           namespace: str | None, hpa: str | None, pdb: bool, node_labels: str, node_selector: tuple[str, ...],
           secret_name: str | None, secrets_as: str, startup_timeout: int | None, host: str | None,
           apply_: bool, run: bool, address: str | None) -> None:  # fmt: skip
    """Write the manifests that run IMAGE, built from the package at PATH, on a cluster or a VM.

    kubernetes: a Deployment and a Service (and an HPA, a PodDisruptionBudget);
    kserve: an InferenceService whose predictor is the image; compose: a docker
    compose file for one GPU VM, one service per replica; ray: a Ray Serve config.
    Resources, GPU node labels, probes, grace periods and secret references come
    from package.yaml; secret values are never written. See docs/deploy.md.
    """
    row = TARGETS[target]
    given = {"hpa": hpa is not None, "pdb": pdb, "host": host is not None, "secrets_as": secrets_as != "env"}
    given["address"] = address is not None
    _check_only(target, row, given, apply_, run)
    if row.needs_image and not image:
        raise PackagerError(f"--target {target} needs --image IMAGE (build one with `pkg build`)")
    options = DeployOptions(
        image=image or "", replicas=replicas, max_replicas=max_replicas, namespace=namespace, hpa=hpa, pdb=pdb,
        node_labels=node_labels, node_selector=parse_selector(node_selector), secret_name=secret_name,
        secrets_as=secrets_as, startup_timeout_s=startup_timeout, host=host or "127.0.0.1",
    )  # fmt: skip
    out = out_dir or Path("deploy") / target
    written = row.write(read_package(path), DeployArgs(options, host), out)
    for file in written:
        click.echo(f"wrote {file}")
    if apply_:
        click.echo(kubectl_apply(out).rstrip("\n"))
        return
    if run:
        run_serve(written[0], address)
        return
    click.echo("next: " + row.next_step.format(dir=shlex.quote(str(out)), file=shlex.quote(str(written[0]))))


def _check_only(target: str, row: Target, given: dict[str, bool], apply_: bool, run: bool) -> None:
    for option, on in given.items():
        owners = [name for name, other in TARGETS.items() if option in other.only]
        if on and option not in row.only:
            flag = "--" + option.replace("_", "-")
            raise PackagerError(f"{flag} applies to --target {' or '.join(owners)}, not {target}")
    if apply_ and not row.applies:
        raise PackagerError(f"--apply runs kubectl, for --target kubernetes or kserve, not {target}")
    if run and not row.runs:
        raise PackagerError(f"--run is for --target ray, not {target} (kubernetes and kserve: --apply)")
