"""What one central process runs, decided from the settings and ``--service`` without
touching anything: the services in the process, whether it is the gateway, where the
gateway finds the others, where it listens. ``central run`` builds the app from it and
logs it (``central.starting``); ``central config check`` prints it, so both say the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from central.settings import CentralSettings
from common.masking import mask_url


class UnknownRole(ValueError):
    """``--service`` names nothing central runs."""


@dataclass(frozen=True)
class ProcessPlan:
    services: tuple[str, ...]  # run in this process
    gateway: bool
    gateway_only: bool
    host: str
    port: int
    remote: Mapping[str, str] = field(default_factory=dict)  # service -> base URL (gateway)


def remote_bases(
    settings: CentralSettings, local: Sequence[str], known: Sequence[str], *, gateway_only: bool
) -> dict[str, str]:
    """Service -> base URL of every service the gateway reaches over HTTP: those listed in
    ``service_urls``, and for the gateway alone every other one (by default on its own port
    on this host)."""
    bases: dict[str, str] = {}
    for name in known:
        if name in local:
            continue
        base = settings.service_urls.get(name)
        if base is None and gateway_only:
            base = f"http://127.0.0.1:{settings.service_ports.get(name, 0)}"
        if base is not None:
            bases[name] = base
    return bases


def plan_process(
    settings: CentralSettings, role: str, known: Sequence[str], port: int | None = None
) -> ProcessPlan:
    """``role``: ``all``, ``gateway`` or a service name (``--service``); ``port``: the
    ``--port`` option, if given."""
    if role == "all":
        services = tuple(name for name in known if name not in settings.service_urls)
        gateway, default_port = True, settings.port
    elif role == "gateway":
        services, gateway, default_port = (), True, settings.port
    elif role in known:
        services, gateway = (role,), False
        default_port = settings.service_ports.get(role, settings.port)
    else:
        raise UnknownRole(f"unknown service {role!r}: all, gateway, {', '.join(known)}")
    gateway_only = gateway and not services
    remote = remote_bases(settings, services, known, gateway_only=gateway_only) if gateway else {}
    return ProcessPlan(
        services=services,
        gateway=gateway,
        gateway_only=gateway_only,
        host=settings.host,
        port=default_port if port is None else port,
        remote=remote,
    )


def describe(settings: CentralSettings, plan: ProcessPlan) -> dict[str, Any]:
    """The start-up line's fields: what runs here and what it talks to, secrets masked."""
    owners = (["gateway"] if plan.gateway else []) + list(plan.services)
    described: dict[str, Any] = {
        "services": owners,
        "databases": {name: mask_url(settings.database_url_for(name)) for name in owners},
        "bus": mask_url(settings.bus_url),
        "cache": mask_url(settings.cache_url),
        "listen": f"{plan.host}:{plan.port}",
        "environment": settings.environment,
    }
    if plan.remote:
        described["routes_to"] = {name: mask_url(url) for name, url in plan.remote.items()}
    return described
