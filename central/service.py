"""The shape every central service has, so the composition root can treat them alike.

A service package ``central/<name>/`` exposes its class in ``service.py`` (``ParkingService``
...), listed in :data:`central.app.SERVICES`. Its constructor takes the
:class:`~central.context.ServiceContext` and does no I/O; ``start`` subscribes to the bus
and starts the service's background loops (owned by the service, cancelled by ``stop``);
``router()`` gives its HTTP API, mounted by the gateway in one process or served on the
service's own port when run separately. ``start`` and ``stop`` are called from the same
task (the ASGI lifespan), after the service's migrations have run.
"""

from __future__ import annotations

from typing import Protocol

from fastapi import APIRouter

from central.context import ServiceContext


class Service(Protocol):
    name: str

    def router(self) -> APIRouter: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class ServiceBuilder(Protocol):
    """A service's class (or any callable building one from the context)."""

    def __call__(self, ctx: ServiceContext) -> Service: ...
