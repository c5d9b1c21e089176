"""Kubernetes manifests: a Deployment and a Service, and when asked an HPA and a PodDisruptionBudget.

Plain dicts built from the deployment facts (YAML comes from yaml.safe_dump in _output; no
template is needed). The pod's pieces (container, probes, volumes) are shared with KServe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from packager._deploy._facts import (
    LIVE_PATH,
    METRICS_PATH,
    PORT,
    QUEUE_METRIC,
    SECRETS_MOUNT,
    STARTUP_PERIOD_S,
    UID,
    DeployOptions,
    Facts,
    deployment_facts,
    table,
)
from packager._deploy._output import write_files
from packager._spec_load import Package

CPU_TARGET_PERCENT = 70
SHM_PATH = "/dev/shm"  # noqa: S108 (a mount point in the pod, not a temporary file here)
Doc = dict[str, Any]


def write_kubernetes(package: Package, options: DeployOptions, out_dir: Path) -> list[Path]:
    """Write deployment.yaml, service.yaml (and hpa.yaml, pdb.yaml when asked) into `out_dir`."""
    facts = deployment_facts(package, options)
    files: dict[str, list[Doc]] = {"deployment.yaml": [deployment(facts)], "service.yaml": [service(facts)]}
    if facts.hpa:
        files["hpa.yaml"] = [autoscaler(facts)]
    if facts.pdb:
        files["pdb.yaml"] = [disruption_budget(facts)]
    return write_files(out_dir, files)


def metadata(facts: Facts, **extra: Any) -> Doc:
    """An object's metadata: its name, namespace (when given) and labels."""
    meta: Doc = {"name": facts.resource_name}
    if facts.namespace:
        meta["namespace"] = facts.namespace
    return {**meta, "labels": dict(facts.labels), **extra}


def deployment(facts: Facts) -> Doc:
    """The Deployment: `replicas` pods of the image."""
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(PORT),
        "prometheus.io/path": METRICS_PATH,
    }
    container = model_container(facts, port_name="http")
    container["startupProbe"] = probe(
        facts.ready_path, "http", STARTUP_PERIOD_S, facts.startup_failures, facts.probe_timeout_s
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(facts),
        "spec": {
            "replicas": facts.replicas,
            "selector": {"matchLabels": dict(facts.selector)},
            "template": {
                "metadata": {"labels": dict(facts.labels), "annotations": annotations},
                "spec": {**pod_settings(facts), "containers": [container], "volumes": volumes(facts)},
            },
        },
    }


def pod_settings(facts: Facts) -> Doc:
    """Pod-level fields: grace period, user, and the node selector and toleration for a GPU."""
    settings: Doc = {
        "terminationGracePeriodSeconds": facts.grace_s,
        "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID},
    }
    if facts.node_selector:
        settings["nodeSelector"] = dict(facts.node_selector)
    if facts.tolerations:
        settings["tolerations"] = [dict(t) for t in facts.tolerations]
    return settings


def model_container(facts: Facts, *, port_name: str, name: str = "model", port: bool = True) -> Doc:
    """The serving container: image, port, resources, secrets, /dev/shm, readiness and liveness."""
    container: Doc = {
        "name": name,
        "image": facts.image,
        "ports": [{"name": port_name, "containerPort": PORT, "protocol": "TCP"}],
        "resources": resources(facts),
        "readinessProbe": probe(facts.ready_path, port_name if port else None, 5, 3, facts.probe_timeout_s),
        "livenessProbe": probe(LIVE_PATH, port_name if port else None, 10, 3, 5),
        "volumeMounts": [{"name": "dshm", "mountPath": SHM_PATH}],
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "runAsUser": UID},
    }
    if facts.secrets and facts.secrets_as == "env":
        container["env"] = [secret_env(facts, secret) for secret in facts.secrets]
    elif facts.secrets:
        container["volumeMounts"].append({"name": "secrets", "mountPath": SECRETS_MOUNT, "readOnly": True})
    return container


def secret_env(facts: Facts, secret: str) -> Doc:
    """PACKAGER_SECRET_<NAME> from key NAME of the Kubernetes Secret: a reference, never a value."""
    return {
        "name": facts.secrets[secret],
        "valueFrom": {"secretKeyRef": {"name": facts.secret_name, "key": secret}},
    }


def resources(facts: Facts) -> Doc:
    """Requests and limits from the spec's resources; GPUs as `nvidia.com/gpu` limits."""
    requests = {"cpu": facts.cpu, "memory": facts.memory}
    limits = dict(requests)
    if facts.gpu_count:
        limits[table()["resource"]] = str(facts.gpu_count)
    return {"requests": requests, "limits": limits}


def probe(path: str, port: str | None, period_s: int, failures: int, timeout_s: int) -> Doc:
    """An HTTP GET probe on `path` (on the named port; KServe's Knative fills the port in itself)."""
    action: Doc = {"path": path}
    if port is not None:
        action["port"] = port
    return {
        "httpGet": action,
        "periodSeconds": period_s,
        "timeoutSeconds": timeout_s,
        "failureThreshold": failures,
    }


def volumes(facts: Facts) -> list[Doc]:
    """A memory-backed /dev/shm (PyTorch's data loaders and NCCL need more than 64 MB) and secrets."""
    found: list[Doc] = [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
    if facts.secrets and facts.secrets_as == "volume":
        items = [{"key": secret, "path": secret} for secret in facts.secrets]
        found.append({"name": "secrets", "secret": {"secretName": facts.secret_name, "items": items}})
    return found


def service(facts: Facts) -> Doc:
    """A ClusterIP Service on port 8080 in front of the pods."""
    port = {"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(facts),
        "spec": {"type": "ClusterIP", "selector": dict(facts.selector), "ports": [port]},
    }


def autoscaler(facts: Facts) -> Doc:
    """An autoscaling/v2 HPA on CPU use, or on the server's queue depth through the Prometheus adapter."""
    if facts.hpa == "queue":
        target: Doc = {"type": "AverageValue", "averageValue": str(facts.concurrency)}
        metric: Doc = {"type": "Pods", "pods": {"metric": {"name": QUEUE_METRIC}, "target": target}}
    else:
        target = {"type": "Utilization", "averageUtilization": CPU_TARGET_PERCENT}
        metric = {"type": "Resource", "resource": {"name": "cpu", "target": target}}
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": facts.resource_name}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(facts),
        "spec": {
            "scaleTargetRef": ref,
            "minReplicas": facts.replicas,
            "maxReplicas": facts.max_replicas,
            "metrics": [metric],
        },
    }


def disruption_budget(facts: Facts) -> Doc:
    """A PodDisruptionBudget: voluntary evictions (node drains) take one pod at a time."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(facts),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(facts.selector)}},
    }
