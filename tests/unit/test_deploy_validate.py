"""Offline validation of what `pkg deploy` writes; no cluster can run here.

- core manifests: `kubernetes-validate` in strict mode (no unknown field) against each bundled
  Kubernetes version still supported (1.29 and newer);
- the InferenceService: walked against the generated model classes of the `kserve` package
  (openapi_types, attribute_map) down to the Kubernetes client's, so a misspelt or mistyped
  field fails;
- compose: `docker compose config` where the plugin exists, else Debian's `docker-compose config`
  (which checks the compose schema), and in any case the structural checks below.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils as kv_utils
from packaging.version import Version

from packager._deploy._compose import compose
from packager._deploy._facts import DeployOptions, Facts, deployment_facts
from packager._deploy._kserve import inference_service
from packager._deploy._kubernetes import autoscaler, deployment, disruption_budget, service
from packager._spec_load import Package, read_package

ROOT = Path(__file__).resolve().parents[2]
GPU = read_package(ROOT / "tests" / "fixtures" / "deploy" / "gpu-model")
CPU = read_package(ROOT / "library" / "minilm")
VERSIONS = sorted({v for v in kv_utils.all_versions() if Version(v) >= Version("1.29")}, key=Version)
VARIANTS = [
    {},
    {"hpa": "cpu", "pdb": True, "namespace": "ml", "node_labels": "gke"},
    {"hpa": "queue", "secrets_as": "volume", "node_labels": "eks", "replicas": 3},
    {"node_selector": {"pool": "gpu"}, "secret_name": "vault", "startup_timeout_s": 120},
]


def facts_for(package: Package, variant: dict[str, Any]) -> Facts:
    return deployment_facts(package, DeployOptions(image="registry.example.com/m:1", **variant))


def core_documents(facts: Facts) -> list[dict[str, Any]]:
    return [deployment(facts), service(facts), autoscaler(facts), disruption_budget(facts)]


# --- Kubernetes ---------------------------------------------------------------------------------


def test_supported_versions_are_bundled() -> None:
    assert len(VERSIONS) >= 5
    assert VERSIONS[0] == "1.29.0"


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(v) or "defaults")
@pytest.mark.parametrize("package", [GPU, CPU], ids=["gpu", "cpu"])
def test_core_manifests_pass_strict_validation(package: Package, variant: dict[str, Any]) -> None:
    for document in core_documents(facts_for(package, variant)):
        for version in VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)


def test_strict_validation_catches_a_misspelt_field() -> None:
    document = deployment(facts_for(GPU, {}))
    pod = document["spec"]["template"]["spec"]
    pod["terminationGracePeriodSecond"] = pod.pop("terminationGracePeriodSeconds")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, VERSIONS[-1], strict=True)


def test_custom_resources_are_not_checked_by_it() -> None:
    # Why the InferenceService needs the walker below: kubernetes-validate has no schema for it.
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(inference_service(facts_for(CPU, {})), VERSIONS[-1], strict=True)


# --- KServe: walk the generated model classes ---------------------------------------------------


def kserve_models() -> types.ModuleType:
    """kserve.models, without running kserve/__init__.py (which starts importing its model server:
    fastapi, grpc, pandas...). The package is installed with --no-deps; its generated model
    classes need only six, urllib3 and the kubernetes client."""
    if "kserve" not in sys.modules:
        found = importlib.util.find_spec("kserve")
        assert found is not None, "install kserve (scripts/venv)"
        assert found.submodule_search_locations
        package = types.ModuleType("kserve")
        package.__path__ = list(found.submodule_search_locations)
        sys.modules["kserve"] = package
    import kserve.models

    return kserve.models


PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "object": (object,),
    "datetime": (str,),
    "date": (str,),
    "ResourceQuantity": (str, int),
}
LIST = re.compile(r"^(?:list|List)\[(.+)\]$")
DICT = re.compile(r"^(?:dict\(str, ?(.+)\)|Dict\[str, ?(.+)\])$")


def model_class(name: str) -> Any:
    import kubernetes.client

    return getattr(kserve_models(), name, None) or getattr(kubernetes.client, name, None)


def type_problems(value: Any, type_name: str, where: str) -> list[str]:
    """Why `value` is not a `type_name` of the generated API classes; [] when it is."""
    if match := LIST.match(type_name):
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {value!r}"]
        return [p for i, item in enumerate(value) for p in type_problems(item, match[1], f"{where}[{i}]")]
    if match := DICT.match(type_name):
        if not isinstance(value, dict):
            return [f"{where}: expected a mapping, got {value!r}"]
        inner = match[1] or match[2]
        return [p for key, item in value.items() for p in type_problems(item, inner, f"{where}.{key}")]
    if type_name in PRIMITIVES:
        wanted = PRIMITIVES[type_name]
        is_bool = isinstance(value, bool)
        if not isinstance(value, wanted) or (is_bool and bool not in wanted and object not in wanted):
            return [f"{where}: expected {type_name}, got {value!r}"]
        return []
    return object_problems(value, type_name, where)


def object_problems(value: Any, type_name: str, where: str) -> list[str]:
    cls = model_class(type_name)
    if cls is None:
        return [f"{where}: unknown API type {type_name}"]
    if not isinstance(value, dict):
        return [f"{where}: expected a {type_name} mapping, got {value!r}"]
    fields = {key: attr for attr, key in cls.attribute_map.items()}
    found = []
    for key, item in value.items():
        if key not in fields:
            found.append(f"{where}.{key}: no such field in {type_name}")
        else:
            found += type_problems(item, cls.openapi_types[fields[key]], f"{where}.{key}")
    return found


def isvc_problems(document: dict[str, Any]) -> list[str]:
    return type_problems(document, "V1beta1InferenceService", "InferenceService")


def test_walker_reaches_kubernetes_container_fields() -> None:
    assert model_class("V1beta1PredictorSpec") is not None
    assert model_class("V1Container") is not None
    assert "liveness_probe" in model_class("V1Container").openapi_types


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(v) or "defaults")
@pytest.mark.parametrize("package", [GPU, CPU], ids=["gpu", "cpu"])
def test_inference_service_matches_the_kserve_api(package: Package, variant: dict[str, Any]) -> None:
    variant = {k: v for k, v in variant.items() if k not in ("hpa", "pdb")}
    document = inference_service(facts_for(package, variant))
    assert isvc_problems(document) == []
    assert document["apiVersion"] == "serving.kserve.io/v1beta1"
    assert document["kind"] == "InferenceService"
    container = document["spec"]["predictor"]["containers"][0]
    assert container["name"] == "kserve-container"
    assert container["ports"] == [{"name": "http1", "containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": f"/v1/models/{package.spec.name}"}


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["spec"]["predictor"].update(minReplica=d["spec"]["predictor"].pop("minReplicas")),
         "predictor.minReplica: no such field"),
        (lambda d: d["spec"]["predictor"].update(scaleTarget="8"), "scaleTarget: expected int"),
        (lambda d: d["spec"]["predictor"]["containers"][0].update(readynessProbe={}),
         "containers[0].readynessProbe: no such field in V1Container"),
        (lambda d: d["spec"]["predictor"]["containers"][0]["ports"][0].update(containerPort="8080"),
         "ports[0].containerPort: expected int"),
        (lambda d: d["spec"]["predictor"]["tolerations"][0].update(efect="NoSchedule"),
         "tolerations[0].efect: no such field in V1Toleration"),
        (lambda d: d["spec"]["predictor"].update(nodeSelector=["a"]), "nodeSelector: expected a mapping"),
        (lambda d: d["spec"].update(predictors={}), "spec.predictors: no such field"),
    ],
)  # fmt: skip
def test_walker_catches_typos_and_wrong_types(mutate: Any, expected: str) -> None:
    document = copy.deepcopy(inference_service(facts_for(GPU, {})))
    mutate(document)
    problems = isvc_problems(document)
    assert len(problems) == 1, problems
    assert expected in problems[0], problems


# --- compose ------------------------------------------------------------------------------------


def compose_checker() -> list[str] | None:
    """The command that validates a compose file here: the compose plugin, else docker-compose v1."""
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0
    ):
        return [docker, "compose"]
    found = shutil.which("docker-compose")
    return [found] if found else None


@pytest.mark.parametrize("replicas", [1, 2])
@pytest.mark.parametrize("package", [GPU, CPU], ids=["gpu", "cpu"])
def test_compose_file_is_valid(package: Package, replicas: int, tmp_path: Path) -> None:
    document = compose(facts_for(package, {"replicas": replicas}))
    checker = compose_checker()
    if checker is None:
        message = (
            "neither `docker compose` nor docker-compose is installed (scripts/docker-setup installs it)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)  # CI checks the compose file for real
        pytest.skip(message)
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(document))
    for name in document.get("secrets", {}):
        (tmp_path / "secrets").mkdir(exist_ok=True)
        (tmp_path / "secrets" / name).write_text("not-a-real-value\n")
    done = subprocess.run([*checker, "-f", "compose.yaml", "config", "-q"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_compose_gives_each_replica_its_own_gpus_and_port() -> None:
    facts = facts_for(GPU, {"replicas": 3})
    services = compose(facts)["services"]
    assert list(services) == ["chat-70b-v2-0", "chat-70b-v2-1", "chat-70b-v2-2"]
    devices = [s["deploy"]["resources"]["reservations"]["devices"][0] for s in services.values()]
    assert [d["device_ids"] for d in devices] == [["0", "1"], ["2", "3"], ["4", "5"]]
    assert all(d["driver"] == "nvidia" and d["capabilities"] == ["gpu"] for d in devices)
    assert [s["ports"] for s in services.values()] == [["127.0.0.1:8080:8080"], ["127.0.0.1:8081:8080"],
                                                       ["127.0.0.1:8082:8080"]]  # fmt: skip
    for entry in services.values():
        assert entry["stop_grace_period"] == f"{facts.grace_s}s"
        assert facts.grace_s > 90
        assert entry["restart"] == "unless-stopped"
        assert entry["healthcheck"]["test"][0] == "CMD"
        assert "/v1/models/chat_70b.v2" in entry["healthcheck"]["test"][-1]
        assert entry["secrets"] == ["hf_token", "api-key"]


def test_compose_secrets_are_file_references() -> None:
    document = compose(facts_for(GPU, {}))
    assert document["secrets"] == {
        "hf_token": {"file": "./secrets/hf_token"},
        "api-key": {"file": "./secrets/api-key"},
    }
    cpu = compose(facts_for(CPU, {"host": "0.0.0.0"}))
    assert "secrets" not in cpu
    assert "deploy" not in cpu["services"]["minilm-0"]
    assert cpu["services"]["minilm-0"]["ports"] == ["0.0.0.0:8080:8080"]


ENTRIES = sorted(p.parent.name for p in (ROOT / "library").glob("*/package.yaml"))


@pytest.mark.parametrize("entry", ENTRIES)
def test_every_catalogue_entry_deploys_to_valid_manifests(entry: str) -> None:
    """The catalogue's own specs (GPU ones, secrets, server: packages): core manifests pass
    strict validation on every supported version, the InferenceService the KServe API walk."""
    facts = facts_for(read_package(ROOT / "library" / entry), {"hpa": "queue", "pdb": True})
    for document in core_documents(facts):
        for version in VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)
    assert isvc_problems(inference_service(facts)) == []
