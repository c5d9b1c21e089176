"""The deployment facts: the rules every deploy target shares, computed once from the spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from packager._deploy._facts import (
    GRACE_MARGIN_S,
    STARTUP_DEFAULT_S,
    STARTUP_PERIOD_S,
    DeployOptions,
    deployment_facts,
    parse_selector,
    resource_name,
    table,
)
from packager._errors import PackagerError
from packager._spec import ACCELERATORS
from packager._spec_load import read_package

ROOT = Path(__file__).resolve().parents[2]
GPU = read_package(ROOT / "tests" / "fixtures" / "deploy" / "gpu-model")
CPU = read_package(ROOT / "library" / "minilm")


def facts(package=GPU, **options):  # type: ignore[no-untyped-def]
    return deployment_facts(package, DeployOptions(image="img:1", **options))


def test_resources_and_gpus_come_from_the_spec() -> None:
    gpu, cpu = facts(), facts(CPU)
    assert (gpu.cpu, gpu.memory, gpu.gpu_count) == ("12", "160Gi", 2)
    assert (cpu.cpu, cpu.memory, cpu.gpu_count) == ("2", "1Gi", 0)
    assert cpu.tolerations == []
    assert cpu.node_selector == {}
    assert gpu.tolerations == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_grace_period_outlasts_the_servers_shutdown_grace() -> None:
    for package in (GPU, CPU):
        grace = package.spec.runtime.shutdown_grace_s
        assert facts(package).grace_s == int(grace) + GRACE_MARGIN_S > grace


def test_startup_allows_long_weight_loading_on_gpus() -> None:
    assert facts().startup_s == STARTUP_DEFAULT_S["gpu"] == 1800
    assert facts(CPU).startup_s == STARTUP_DEFAULT_S["cpu"]
    assert facts().startup_failures * STARTUP_PERIOD_S == 1800
    custom = facts(startup_timeout_s=95)
    assert custom.startup_failures == 10
    assert custom.startup_failures * STARTUP_PERIOD_S >= 95


def test_probe_timeout_outlasts_is_healthy() -> None:
    assert facts().probe_timeout_s > GPU.spec.runtime.health_timeout_s
    assert facts(CPU).probe_timeout_s > CPU.spec.runtime.health_timeout_s


@pytest.mark.parametrize(
    ("scheme", "label"),
    [
        ("gke", {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100"}),
        ("eks", {"k8s.amazonaws.com/accelerator": "nvidia-tesla-a100"}),
        ("gpu-operator", {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}),
    ],
)
def test_node_labels_per_scheme(scheme: str, label: dict[str, str]) -> None:
    assert facts(node_labels=scheme).node_selector == label


def test_node_selector_option_replaces_the_table() -> None:
    chosen = facts(node_selector=parse_selector(("pool=a100", "zone=b")))
    assert chosen.node_selector == {"pool": "a100", "zone": "b"}
    with pytest.raises(PackagerError, match="expected KEY=VALUE"):
        parse_selector(("pool",))


def test_table_covers_every_accelerator_the_spec_accepts() -> None:
    rows = table()["accelerators"]
    assert set(rows) == set(ACCELERATORS)
    for row in rows.values():
        assert set(table()["schemes"]) <= set(row)


def test_a_gpu_a_scheme_lacks_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "package.yaml").write_text("spec_version: 1\nname: g\nresources: {accelerator: A10G}\n")
    (tmp_path / "model.py").write_text("class Model:\n    def predict(self, x):\n        return x\n")
    package = read_package(tmp_path)
    assert facts(package, node_labels="eks").node_selector == {"k8s.amazonaws.com/accelerator": "nvidia-a10g"}
    with pytest.raises(PackagerError, match=r"A10G has no gke node label.*--node-selector"):
        facts(package, node_labels="gke")


def test_secrets_are_names_and_variables_only() -> None:
    gpu = facts()
    assert gpu.secrets == {"hf_token": "PACKAGER_SECRET_HF_TOKEN", "api-key": "PACKAGER_SECRET_API_KEY"}
    assert gpu.secret_name == "chat-70b-v2-secrets"
    assert facts(secret_name="vault").secret_name == "vault"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("minilm", "minilm"), ("chat_70b.v2", "chat-70b-v2"), ("7b-model", "b-model"), ("x" * 70, "x" * 63)],
)
def test_resource_names_are_dns_labels(name: str, expected: str) -> None:
    assert resource_name(name) == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"replicas": 0}, "--replicas must be 1 or more"),
        ({"replicas": 3, "max_replicas": 2}, "--max-replicas 2 is below --replicas 3"),
        ({"hpa": "memory"}, "unknown --hpa"),
        ({"node_labels": "aks"}, "unknown --node-labels"),
        ({"secrets_as": "files"}, "unknown --secrets-as"),
        ({"startup_timeout_s": 5}, "--startup-timeout must be at least"),
    ],
)
def test_bad_options_are_packager_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(PackagerError, match=message):
        facts(**options)


def test_table_is_shipped_as_json() -> None:
    path = ROOT / "packager" / "_deploy" / "data" / "accelerators.json"
    assert json.loads(path.read_text()) == table()
