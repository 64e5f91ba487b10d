"""The Kubernetes manifests of deploy/k8s as the cluster gets them: ``kubectl kustomize``
of an overlay, then read as plain data (documents, label selectors, a container's env).

Under CI a missing ``kubectl`` is a failure (tests.services), never a skip.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from tests.services import require_binary

K8S: Final = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
PRODUCTION: Final = K8S / "overlays" / "production"
TEST_CLUSTER: Final = K8S / "examples" / "test-cluster"
# the example of central-secrets that production's out-of-band Secret is made from
SECRETS_EXAMPLE: Final = PRODUCTION / "secrets.env.example"

Document = dict[str, Any]


def build(directory: Path) -> Manifests:
    """``kubectl kustomize directory``, offline (kustomize reads only local files here)."""
    kubectl = require_binary("kubectl")
    done = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"kubectl kustomize {directory} failed:\n{done.stderr}"
    return Manifests([doc for doc in yaml.safe_load_all(done.stdout) if doc])


@dataclass(frozen=True)
class Manifests:
    documents: list[Document]

    def of_kind(self, kind: str) -> list[Document]:
        return [doc for doc in self.documents if doc["kind"] == kind]

    def named(self, kind: str, name: str) -> Document:
        found = [doc for doc in self.of_kind(kind) if doc["metadata"]["name"] == name]
        assert len(found) == 1, f"{len(found)} {kind} named {name}"
        return found[0]

    def deployments(self) -> dict[str, Document]:
        return {doc["metadata"]["name"]: doc for doc in self.of_kind("Deployment")}

    def config_map_data(self, name: str) -> dict[str, str]:
        data: dict[str, str] = self.named("ConfigMap", name).get("data", {})
        return data

    def policies_for(self, labels: Mapping[str, str]) -> list[Document]:
        """The NetworkPolicies that apply to a pod with ``labels``."""
        return [
            policy
            for policy in self.of_kind("NetworkPolicy")
            if selects(policy["spec"]["podSelector"], labels)
        ]


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Does a label selector (matchLabels and matchExpressions) match ``labels``?"""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def pod_labels(workload: Document) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def containers(workload: Document) -> list[Document]:
    found: list[Document] = workload["spec"]["template"]["spec"]["containers"]
    return found


def rules(policy: Document, direction: str) -> Iterator[Document]:
    """The ingress or egress rules of a policy ("ingress" / "egress")."""
    yield from policy["spec"].get(direction, [])


def rule_ports(rule: Document) -> set[int | str]:
    return {port["port"] for port in rule.get("ports", [])}


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines, as ``kubectl create secret --from-env-file`` reads them."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


def container_env(
    manifests: Manifests, container: Document, secrets: Mapping[str, str]
) -> dict[str, str]:
    """A container's environment as the kubelet would give it: ``envFrom`` ConfigMaps,
    then ``env`` (values, ConfigMap keys, and Secret keys looked up in ``secrets``)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(manifests.config_map_data(source["configMapRef"]["name"]))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        reference = item["valueFrom"]
        if "configMapKeyRef" in reference:
            ref = reference["configMapKeyRef"]
            env[item["name"]] = manifests.config_map_data(ref["name"])[ref["key"]]
        else:
            env[item["name"]] = secrets[reference["secretKeyRef"]["key"]]
    return env
