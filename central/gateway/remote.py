"""The gateway's view of services run separately: their health and their OpenAPI.

``/healthz`` answers 200 always, with ``status: degraded`` and the services that do not
answer (``/readyz`` asks theirs, :mod:`central.health`); ``/openapi.json`` merges the services' own documents (a service that is down is
left out until it is back), so ``/docs`` shows the whole API at the gateway.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

import structlog

from central.infra.http_client import ResilientClient, Unavailable

log = structlog.get_logger("central.gateway")

HEALTH_TIMEOUT_S = 2.0
SPEC_TTL_S = 60.0


def probe_target(name: str) -> str:
    """The client target of health probes and docs: a probe slower than its 2 s (a
    service busy with a storm) must not open the breaker the service's traffic goes by."""
    return f"{name} probe"


class RemoteServices:
    def __init__(self, client: ResilientClient, bases: Mapping[str, str]) -> None:
        """``bases``: service name -> base URL."""
        self._client = client
        self._bases = dict(bases)
        self._specs: dict[str, tuple[float, dict[str, Any]]] = {}

    async def health(self) -> dict[str, str]:
        return await self.states("/healthz")

    async def states(self, path: str) -> dict[str, str]:
        """Each service's answer to ``path`` (``/healthz``, ``/readyz``): ``up`` for 200.
        Asked side by side: services that do not answer cost one timeout, not one each."""
        names = list(self._bases)
        answers = await asyncio.gather(*(self._state(name, path) for name in names))
        return dict(zip(names, answers, strict=True))

    async def _state(self, name: str, path: str) -> str:
        try:
            r = await self._client.request(
                probe_target(name),
                "GET",
                f"{self._bases[name].rstrip('/')}{path}",
                timeout_s=HEALTH_TIMEOUT_S,
            )
        except Unavailable as err:
            return f"down ({err.reason})"
        return "up" if r.status_code == 200 else f"answers {r.status_code}"

    async def spec(self, name: str) -> dict[str, Any] | None:
        cached = self._specs.get(name)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        base = self._bases[name]
        try:
            r = await self._client.request(
                probe_target(name),
                "GET",
                f"{base.rstrip('/')}/openapi.json",
                timeout_s=HEALTH_TIMEOUT_S,
            )
        except Unavailable:
            return cached[1] if cached else None
        if r.status_code != 200:
            return cached[1] if cached else None
        spec: dict[str, Any] = r.json()
        self._specs[name] = (now + SPEC_TTL_S, spec)
        return spec

    async def merged_openapi(self, local: dict[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = json.loads(json.dumps(local))
        paths = merged.setdefault("paths", {})
        components = merged.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        security = components.setdefault("securitySchemes", {})
        for name in self._bases:
            spec = await self.spec(name)
            if spec is None:
                log.warning("gateway.openapi.missing", service=name)
                continue
            their = spec.get("components", {}).get("schemas", {})
            clashes = {k for k, v in their.items() if k in schemas and schemas[k] != v}
            text = json.dumps(spec)
            for clash in clashes:
                text = text.replace(
                    f'"#/components/schemas/{clash}"', f'"#/components/schemas/{name}_{clash}"'
                )
            spec = json.loads(text)
            for key, value in spec.get("components", {}).get("schemas", {}).items():
                schemas[f"{name}_{key}" if key in clashes else key] = value
            security.update(spec.get("components", {}).get("securitySchemes", {}))
            for path, item in spec.get("paths", {}).items():
                if path not in ("/healthz", "/readyz"):
                    paths[path] = item
        return merged
