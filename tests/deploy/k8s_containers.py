"""Kubernetes manifests read as :class:`ContainerSpec` s, for :mod:`tests.deploy.local_run`
to run as local processes: each central Deployment's container (named after the Service
that reaches it), the migrations Job's as a one-shot. Environments are resolved as the
kubelet resolves them (ConfigMap keys from the built manifests, Secret keys from a file
standing for the Secret); emptyDir mounts become the container's volumes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from tests.deploy.containers import ContainerSpec, HealthCheck
from tests.deploy.manifests import (
    Document,
    Manifests,
    container_env,
    containers,
    pod_labels,
    selects,
)

PROBES: Final = ("startupProbe", "livenessProbe", "readinessProbe")


def deployment_specs(manifests: Manifests, secrets: Mapping[str, str]) -> list[ContainerSpec]:
    """Every Deployment's container, the gateway last (it is the one that needs the others)."""
    specs = [_server(manifests, d, secrets) for d in manifests.of_kind("Deployment")]
    return sorted(specs, key=lambda spec: spec.name == "gateway")


def job_spec(manifests: Manifests, name: str, secrets: Mapping[str, str]) -> ContainerSpec:
    job = manifests.named("Job", name)
    [container] = containers(job)
    return ContainerSpec(
        name=name,
        args=tuple(container["args"]),
        env=container_env(manifests, container, secrets),
        volumes=_empty_dirs(job, container),
        one_shot=True,
    )


def probe_urls(manifests: Manifests, name: str) -> dict[str, str]:
    """A Deployment's probes as URLs in its container's view: probe -> URL."""
    [container] = containers(manifests.named("Deployment", name))
    return {probe: _probe_url(container, container[probe]) for probe in PROBES}


def _server(
    manifests: Manifests, deployment: Document, secrets: Mapping[str, str]
) -> ContainerSpec:
    [container] = containers(deployment)
    [port] = [p["containerPort"] for p in container["ports"]]
    service = _service_of(manifests, deployment)
    [service_port] = service["spec"]["ports"]
    # other containers reach it as <service>:<port>: the same port in the container
    assert service_port["port"] == port, f"{service['metadata']['name']}: port {service_port}"
    return ContainerSpec(
        name=service["metadata"]["name"],
        # central listens on its service's default port in the container; said here as
        # --port so that the local run can move it to a free one
        args=(*container["args"], "--port", str(port)),
        env=container_env(manifests, container, secrets),
        volumes=_empty_dirs(deployment, container),
        ports=(port,),
        health=HealthCheck(url=_probe_url(container, container["startupProbe"])),
    )


def _service_of(manifests: Manifests, deployment: Document) -> Document:
    labels = pod_labels(deployment)
    [service] = [
        s
        for s in manifests.of_kind("Service")
        if "selector" in s["spec"] and selects({"matchLabels": s["spec"]["selector"]}, labels)
    ]
    return service


def _probe_url(container: Document, probe: Document) -> str:
    get = probe["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    port = ports[get["port"]] if isinstance(get["port"], str) else get["port"]
    return f"http://localhost:{port}{get['path']}"


def _empty_dirs(workload: Document, container: Document) -> tuple[str, ...]:
    empty = {
        volume["name"]
        for volume in workload["spec"]["template"]["spec"].get("volumes", [])
        if "emptyDir" in volume
    }
    return tuple(
        mount["mountPath"] for mount in container.get("volumeMounts", []) if mount["name"] in empty
    )
