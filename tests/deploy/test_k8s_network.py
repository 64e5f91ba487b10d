"""Who may talk to whom under deploy/k8s's NetworkPolicies, worked out from the built
manifests: a connection needs the source's egress and the target's ingress to allow it.
Services only from the gateway, the gateway only from the ingress controller, NATS and
Redis only from central, each database only from its own service (and the migrations)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from central.app import SERVICE_NAMES
from tests.deploy.manifests import (
    PRODUCTION,
    TEST_CLUSTER,
    Document,
    Manifests,
    build,
    containers,
    pod_labels,
    rule_ports,
    rules,
    selects,
)

CENTRAL = {"gateway", *SERVICE_NAMES}


@dataclass(frozen=True)
class Pod:
    name: str  # its workload's
    labels: dict[str, str]
    ports: dict[str, int]  # container port name -> number


@pytest.fixture(scope="module")
def test_cluster() -> Manifests:
    return build(TEST_CLUSTER)


def pods(manifests: Manifests) -> list[Pod]:
    workloads = [
        *manifests.of_kind("Deployment"),
        *manifests.of_kind("StatefulSet"),
        *manifests.of_kind("Job"),
    ]
    return [
        Pod(
            w["metadata"]["name"],
            pod_labels(w),
            {p["name"]: p["containerPort"] for c in containers(w) for p in c.get("ports", [])},
        )
        for w in workloads
    ]


def allows(policies: list[Document], direction: str, peer: Pod, port: int, names: set[str]) -> bool:
    """Does one of ``policies`` (those selecting a pod) let ``peer`` in (or out to it) on
    ``port`` (``names``: the target's names for that port)? No policy of that direction:
    everything is allowed, as in Kubernetes."""
    kind = "Ingress" if direction == "ingress" else "Egress"
    applying = [p for p in policies if kind in p["spec"]["policyTypes"]]
    if not applying:
        return True
    for policy in applying:
        for rule in rules(policy, direction):
            wanted = rule_ports(rule)
            if wanted and not wanted & {port, *names}:
                continue
            peers = rule.get("from" if direction == "ingress" else "to")
            if not peers:
                return True
            for selector in peers:
                in_namespace = "podSelector" in selector and "namespaceSelector" not in selector
                if in_namespace and selects(selector["podSelector"], peer.labels):
                    return True
    return False


def reaching(manifests: Manifests, target: str, port_name: str, *, egress: bool = True) -> set[str]:
    """The workloads of the namespace whose pods may connect to ``target``'s port; with
    ``egress=False``, those the target's ingress alone lets in (each side must hold on its
    own: a policy loosened on one side is caught)."""
    everyone = pods(manifests)
    [to] = [pod for pod in everyone if pod.name == target]
    port = to.ports[port_name]
    names = {port_name}
    found = set()
    for source in everyone:
        if source.name == target:
            continue
        out = not egress or allows(manifests.policies_for(source.labels), "egress", to, port, names)
        into = allows(manifests.policies_for(to.labels), "ingress", source, port, names)
        if out and into:
            found.add(source.name)
    return found


def assert_reached_by(
    manifests: Manifests, target: str, port_name: str, expected: set[str]
) -> None:
    assert reaching(manifests, target, port_name) == expected, f"{target}:{port_name}"
    assert reaching(manifests, target, port_name, egress=False) == expected, (
        f"{target}:{port_name} lets in more than {expected}"
    )


def test_everything_is_denied_unless_allowed(test_cluster: Manifests) -> None:
    deny = test_cluster.named("NetworkPolicy", "default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_services_are_reached_only_from_the_gateway(test_cluster: Manifests) -> None:
    for name in SERVICE_NAMES:
        assert_reached_by(test_cluster, name, "http", {"gateway"})


def test_the_gateway_is_reached_only_from_the_ingress_controller(test_cluster: Manifests) -> None:
    assert_reached_by(test_cluster, "gateway", "http", set())
    policy = test_cluster.named("NetworkPolicy", "gateway")
    [rule] = policy["spec"]["ingress"]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]


def test_nats_and_redis_are_reached_only_from_central(test_cluster: Manifests) -> None:
    assert_reached_by(test_cluster, "nats", "client", CENTRAL)
    assert_reached_by(test_cluster, "nats", "cluster", set())  # the other node: same workload
    assert_reached_by(test_cluster, "redis-primary", "redis", CENTRAL | {"redis-replica"})
    assert reaching(test_cluster, "redis-replica", "redis") == CENTRAL


def test_each_example_database_is_reached_by_its_service_and_the_migrations(
    test_cluster: Manifests,
) -> None:
    for name in ("gateway", *SERVICE_NAMES):
        assert_reached_by(test_cluster, f"postgres-{name}", "postgres", {name, "migrations"})
        service = test_cluster.named("Service", f"postgres-{name}")
        servers = [
            p
            for p in pods(test_cluster)
            if selects({"matchLabels": service["spec"]["selector"]}, p.labels)
        ]
        assert [p.name for p in servers] == [f"postgres-{name}"]


def test_each_service_reaches_only_its_own_external_database() -> None:
    production = build(PRODUCTION)
    database_blocks: dict[str, set[str]] = {}
    for name in ("gateway", *SERVICE_NAMES):
        labels = pod_labels(production.named("Deployment", name))
        database_blocks[name] = {
            peer["ipBlock"]["cidr"]
            for policy in production.policies_for(labels)
            for rule in rules(policy, "egress")
            if 5432 in rule_ports(rule)
            for peer in rule["to"]
            if "ipBlock" in peer
        }
    assert all(len(blocks) == 1 for blocks in database_blocks.values()), database_blocks
    every = [cidr for blocks in database_blocks.values() for cidr in blocks]
    assert len(set(every)) == len(every), "two services share a database's address"
    migrations = production.policies_for(pod_labels(production.named("Job", "migrations")))
    reached = {
        peer["ipBlock"]["cidr"]
        for policy in migrations
        for rule in rules(policy, "egress")
        for peer in rule["to"]
        if "ipBlock" in peer
    }
    assert reached == set(every)
