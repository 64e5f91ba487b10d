"""deploy/k8s builds offline and passes the Kubernetes schemas of a fixed version
(kubernetes-validate, strict: an unknown field fails), and says what the design says:
replicas, probes, resources, a non-root hardened pod, PDBs, the migrations Job, NATS with
2 nodes, Redis, and no secret value in the repository."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from central.app import SERVICE_NAMES
from central.settings import SERVICE_PORTS
from tests.deploy.manifests import (
    K8S,
    PRODUCTION,
    SECRETS_EXAMPLE,
    TEST_CLUSTER,
    Manifests,
    build,
    containers,
    pod_labels,
    read_env_file,
)

# the schemas manifests are checked against: the oldest Kubernetes we support
KUBERNETES_VERSION = "1.32"
# the design: gateway (the ingress target), parking, charging, notification at 2,
# analytics at 1, sync ingest at 2
REPLICAS = {
    "gateway": 2,
    "parking": 2,
    "charging": 2,
    "notification": 2,
    "analytics": 1,
    "sync": 2,
}
PORTS = {"gateway": 8000, **SERVICE_PORTS}


@pytest.fixture(scope="module")
def production() -> Manifests:
    return build(PRODUCTION)


def schema_errors(manifests: Manifests) -> list[str]:
    errors = []
    for doc in manifests.documents:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {err.message}")
    return errors


@pytest.mark.parametrize("overlay", [PRODUCTION, TEST_CLUSTER], ids=lambda p: p.name)
def test_every_document_passes_the_kubernetes_schemas(overlay: Path) -> None:
    manifests = build(overlay)
    assert len(manifests.documents) > 40
    assert schema_errors(manifests) == []


def test_the_schema_check_refuses_an_unknown_field(production: Manifests) -> None:
    deployment = production.named("Deployment", "parking")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    [error] = schema_errors(Manifests([broken]))
    assert error.startswith("Deployment/parking: ")
    assert "'replica' was unexpected" in error


def test_replicas_are_the_designs(production: Manifests) -> None:
    replicas = {name: d["spec"]["replicas"] for name, d in production.deployments().items()}
    assert replicas == REPLICAS
    assert {
        d["metadata"]["namespace"] for d in production.documents if d["kind"] != "Namespace"
    } == {"production"}


def test_each_deployment_runs_its_service_on_its_port(production: Manifests) -> None:
    assert set(REPLICAS) == {"gateway", *SERVICE_NAMES}
    for name, deployment in production.deployments().items():
        [container] = containers(deployment)
        assert container["args"] == ["central", "run", "--service", name, "--host", "0.0.0.0"]
        assert container["ports"] == [{"name": "http", "containerPort": PORTS[name]}]
        assert container["image"] == "registry.example.invalid/evpark:0.1.0"
        service = production.named("Service", name)
        assert service["spec"]["selector"].items() <= pod_labels(deployment).items()
        assert service["spec"]["ports"] == [
            {"name": "http", "port": PORTS[name], "targetPort": "http"}
        ]


def test_the_gateway_finds_every_service_at_its_service(production: Manifests) -> None:
    urls = json.loads(production.config_map_data("central-config")["EVPARK_CENTRAL_SERVICE_URLS"])
    assert urls == {name: f"http://{name}:{SERVICE_PORTS[name]}" for name in SERVICE_NAMES}


def test_every_deployment_has_probes_resources_and_a_hardened_pod(
    production: Manifests,
) -> None:
    for name, deployment in production.deployments().items():
        pod = deployment["spec"]["template"]["spec"]
        [container] = containers(deployment)
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, name
        assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}, name
        assert container["startupProbe"]["httpGet"]["path"] == "/livez", name
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) == {"cpu", "memory"}, name
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the image's user
        assert pod["automountServiceAccountToken"] is False
        assert_hardened(container["securityContext"], name)
    gateway = production.named("Deployment", "gateway")
    assert containers(gateway)[0]["resources"]["limits"]["memory"] == "768Mi"  # the overlay's


def assert_hardened(context: dict[str, Any], name: str) -> None:
    assert context["allowPrivilegeEscalation"] is False, name
    assert context["readOnlyRootFilesystem"] is True, name
    assert context["capabilities"] == {"drop": ["ALL"]}, name


def test_every_pod_of_the_overlay_is_hardened(production: Manifests) -> None:
    workloads = [*production.of_kind("StatefulSet"), *production.of_kind("Job")]
    assert {w["metadata"]["name"] for w in workloads} == {
        "nats",
        "redis-primary",
        "redis-replica",
        "migrations",
    }
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in containers(workload):
            assert_hardened(container["securityContext"], workload["metadata"]["name"])
            assert "limits" in container["resources"]


def test_a_disruption_budget_keeps_one_replica_of_each_replicated_deployment(
    production: Manifests,
) -> None:
    budgets = production.of_kind("PodDisruptionBudget")
    for name, deployment in production.deployments().items():
        covering = [
            b
            for b in budgets
            if b["spec"]["selector"]["matchLabels"].items() <= pod_labels(deployment).items()
        ]
        if REPLICAS[name] > 1:
            assert [b["spec"].get("minAvailable") for b in covering] == [1], name
        else:
            assert covering == [], f"{name} has 1 replica: a budget would block every drain"


def test_the_ingress_sends_https_to_the_gateway(production: Manifests) -> None:
    [ingress] = production.of_kind("Ingress")
    [rule] = ingress["spec"]["rules"]
    [tls] = ingress["spec"]["tls"]
    assert tls["hosts"] == [rule["host"]] == ["evpark.example.com"]
    assert tls["secretName"]
    [path] = rule["http"]["paths"]
    assert path["backend"]["service"] == {"name": "gateway", "port": {"name": "http"}}


def test_migrations_run_as_a_job_over_every_database(production: Manifests) -> None:
    job = production.named("Job", "migrations")
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    [container] = containers(job)
    assert container["args"] == ["central", "migrate"]
    urls = {
        item["name"]: item["valueFrom"]["secretKeyRef"]["key"]
        for item in container["env"]
        if item["name"].startswith("EVPARK_CENTRAL_DATABASE_URLS__")
    }
    assert urls == {
        f"EVPARK_CENTRAL_DATABASE_URLS__{name.upper()}": f"{name}_database_url"
        for name in ("gateway", *SERVICE_NAMES)
    }


def test_nats_runs_two_routed_jetstream_nodes(production: Manifests) -> None:
    nats = production.named("StatefulSet", "nats")
    assert nats["spec"]["replicas"] == 2
    assert [t["metadata"]["name"] for t in nats["spec"]["volumeClaimTemplates"]] == ["data"]
    conf = production.config_map_data("nats-config")["nats.conf"]
    service = nats["spec"]["serviceName"]
    for ordinal in range(2):
        assert f"nats://nats-{ordinal}.{service}:6222" in conf
    assert "jetstream {" in conf
    assert "store_dir: /data" in conf  # the volume claim's mount
    config = production.config_map_data("central-config")
    assert config["EVPARK_CENTRAL_BUS_URL"] == "nats://nats:4222"
    assert 1 <= int(config["EVPARK_CENTRAL_BUS_STREAM_REPLICAS"]) <= nats["spec"]["replicas"]
    assert int(config["EVPARK_CENTRAL_BUS_STREAM_MAX_AGE_DAYS"]) >= 1


def test_the_cache_is_a_redis_primary_with_a_replica(production: Manifests) -> None:
    primary = production.named("StatefulSet", "redis-primary")
    replica = production.named("StatefulSet", "redis-replica")
    assert containers(replica)[0]["args"][-3:] == ["--replicaof", "redis-primary", "6379"]
    cache_url = production.config_map_data("central-config")["EVPARK_CENTRAL_CACHE_URL"]
    assert cache_url == "redis://redis-primary:6379/0"
    service = production.named("Service", "redis-primary")
    assert service["spec"]["selector"].items() <= pod_labels(primary).items()
    assert not service["spec"]["selector"].items() <= pod_labels(replica).items()


def test_each_database_is_an_external_name(production: Manifests) -> None:
    names = {
        doc["metadata"]["name"]: doc["spec"]
        for doc in production.of_kind("Service")
        if doc["metadata"]["name"].startswith("postgres-")
    }
    assert set(names) == {f"postgres-{name}" for name in ("gateway", *SERVICE_NAMES)}
    assert all(spec["type"] == "ExternalName" for spec in names.values())


def test_no_secret_value_is_committed(production: Manifests) -> None:
    assert production.of_kind("Secret") == []
    example = read_env_file(SECRETS_EXAMPLE)
    # every key the manifests read from central-secrets is in the example, and no more
    keys = {
        item["valueFrom"]["secretKeyRef"]["key"]
        for workload in [*production.of_kind("Deployment"), *production.of_kind("Job")]
        for container in containers(workload)
        for item in container.get("env", [])
        if "secretKeyRef" in item.get("valueFrom", {})
    }
    assert keys == set(example)
    assert example["internal_token"].startswith("replace-with")
    assert all(":PASSWORD@" in url for key, url in example.items() if key.endswith("_url"))
    tracked = subprocess.run(
        ["git", "ls-files", "."], cwd=K8S, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "overlays/production/secrets.env.example" in tracked
    assert not [path for path in tracked if Path(path).name == "secrets.env"]
