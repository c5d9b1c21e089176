"""A docker compose file for one GPU VM: one service per replica, each with its own GPUs.

Replica i gets the GPUs i*N ... i*N+N-1 (N from `resources.accelerator`) and publishes port
8080+i on `--host` (127.0.0.1 unless asked). Secrets are compose secrets read from files beside
the compose file (./secrets/NAME): the file names are written here, never a value.
"""

from __future__ import annotations

from pathlib import Path

from packager._build._write import HEALTHCHECK
from packager._deploy._facts import PORT, DeployOptions, Facts, deployment_facts
from packager._deploy._kubernetes import Doc
from packager._deploy._output import write_files
from packager._spec_load import Package

SECRETS_DIR = "/run/secrets"  # where compose mounts secrets; PACKAGER_SECRETS_DIR points there
SHM_SIZE = "1gb"  # /dev/shm for PyTorch (Docker's default is 64 MB)


def write_compose(package: Package, options: DeployOptions, out_dir: Path) -> list[Path]:
    """Write compose.yaml into `out_dir`."""
    facts = deployment_facts(package, options)
    return write_files(out_dir, {"compose.yaml": [compose(facts)]})


def compose(facts: Facts) -> Doc:
    """The compose document: `replicas` services, and the secrets they read."""
    services = {f"{facts.resource_name}-{i}": service(facts, i) for i in range(facts.replicas)}
    document: Doc = {"services": services}
    if facts.secrets:
        document["secrets"] = {name: {"file": f"./secrets/{name}"} for name in facts.secrets}
    return document


def service(facts: Facts, index: int) -> Doc:
    """Replica `index`: the image on its own GPUs and host port."""
    check = HEALTHCHECK.format(port=PORT, name=facts.name).replace("$", "$$")  # compose interpolates $
    entry: Doc = {
        "image": facts.image,
        "restart": "unless-stopped",
        "ports": [f"{facts.host}:{PORT + index}:{PORT}"],
        "shm_size": SHM_SIZE,
        "stop_grace_period": f"{facts.grace_s}s",
        "healthcheck": {
            "test": ["CMD", "python", "-c", check],
            "interval": "10s",
            "timeout": f"{facts.probe_timeout_s}s",
            "retries": 3,
            "start_period": f"{facts.startup_s}s",
        },
    }
    if facts.secrets:
        entry["environment"] = {"PACKAGER_SECRETS_DIR": SECRETS_DIR}
        entry["secrets"] = list(facts.secrets)
    if facts.gpu_count:
        first = index * facts.gpu_count
        ids = [str(gpu) for gpu in range(first, first + facts.gpu_count)]
        device = {"driver": "nvidia", "device_ids": ids, "capabilities": ["gpu"]}
        entry["deploy"] = {"resources": {"reservations": {"devices": [device]}}}
    return entry
