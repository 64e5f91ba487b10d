"""What a service gets from the composition root (:mod:`central.app`).

Each service receives its OWN database engine (it never reads another service's
tables), the shared bus and cache, the settings, a clock returning aware UTC
datetimes (tests pass a fake one) and the process's metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from central.infra.bus import Bus
from central.infra.cache import Cache
from central.infra.metrics import CentralMetrics
from central.settings import CentralSettings


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ServiceContext:
    engine: AsyncEngine
    bus: Bus
    cache: Cache
    settings: CentralSettings
    clock: Callable[[], datetime] = utc_now
    name: str = ""
    metrics: CentralMetrics = field(default_factory=CentralMetrics)  # the process's registry
