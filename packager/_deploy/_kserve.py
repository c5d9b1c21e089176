"""A KServe InferenceService whose predictor is the image itself (a custom container).

KServe routes its V1 (`/v1/models/NAME:predict`) and V2 (`/v2/models/NAME/infer`) paths to the
container unchanged, and the server answers both, so nothing is translated. The container is
named `kserve-container` and its port `http1` (Knative's name for HTTP/1.1), as KServe expects.
In Knative (serverless) mode the probes name no port: Knative points them at the container port.
"""

from __future__ import annotations

from pathlib import Path

from packager._deploy._facts import METRICS_PATH, PORT, DeployOptions, Facts, deployment_facts
from packager._deploy._kubernetes import Doc, metadata, model_container, volumes
from packager._deploy._output import write_files
from packager._spec_load import Package

API_VERSION = "serving.kserve.io/v1beta1"


def write_kserve(package: Package, options: DeployOptions, out_dir: Path) -> list[Path]:
    """Write inferenceservice.yaml into `out_dir`."""
    facts = deployment_facts(package, options)
    return write_files(out_dir, {"inferenceservice.yaml": [inference_service(facts)]})


def inference_service(facts: Facts) -> Doc:
    """The InferenceService document."""
    annotations = {
        "serving.kserve.io/enable-prometheus-scraping": "true",
        "prometheus.kserve.io/port": str(PORT),
        "prometheus.kserve.io/path": METRICS_PATH,
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "InferenceService",
        "metadata": metadata(facts, annotations=annotations),
        "spec": {"predictor": predictor(facts)},
    }


def predictor(facts: Facts) -> Doc:
    """The predictor: replicas, scaling on in-flight requests, timeouts and the pod."""
    spec: Doc = {
        "minReplicas": facts.replicas,
        "maxReplicas": facts.max_replicas,
        # Knative's soft concurrency target: as many requests per replica as predict may run at once.
        "scaleMetric": "concurrency",
        "scaleTarget": facts.concurrency,
        "timeout": facts.request_timeout_s,
        # Knative gives up on a revision that is not ready by then: as long as the startup probe.
        "annotations": {"serving.knative.dev/progress-deadline": f"{facts.startup_s}s"},
        "terminationGracePeriodSeconds": facts.grace_s,
    }
    if facts.node_selector:
        spec["nodeSelector"] = dict(facts.node_selector)
    if facts.tolerations:
        spec["tolerations"] = [dict(t) for t in facts.tolerations]
    container = model_container(facts, port_name="http1", name="kserve-container", port=False)
    return {**spec, "containers": [container], "volumes": volumes(facts)}
