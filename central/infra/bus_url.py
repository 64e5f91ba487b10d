"""Pick the bus implementation by URL: ``memory://`` (default) or ``nats://host:4222``.

The object returned is both the :class:`~central.infra.bus.Bus` the services get and an async
context manager that owns its connection and consumer tasks; the composition root
enters it for the process's lifetime. Services may subscribe before or after it is
entered; delivery starts once it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Protocol, Self

from central.infra.bus import BATCH_SIZE, Bus
from central.infra.bus_backlog import ConsumerBacklog
from central.infra.metrics import CentralMetrics


class ManagedBus(Bus, Protocol):
    async def __aenter__(self) -> Self: ...

    async def stop_delivery(self) -> None:
        """Stop handing events to consumers; returns once no handler runs."""
        ...

    def problem(self) -> str | None:
        """Why the bus cannot deliver now (for /readyz), or None."""
        ...

    async def pending(self) -> dict[tuple[str, str], int]:
        """Events waiting per (topic, consumer): the consumers' lag."""
        ...

    async def backlog(self, topics: Iterable[str]) -> list[ConsumerBacklog]:
        """Every durable consumer of ``topics``, this process's or others' (on NATS)."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def make_bus(
    url: str,
    namespace: str = "",
    *,
    stream_replicas: int = 1,
    stream_max_age_s: float = 7 * 86400,
    batch_size: int = BATCH_SIZE,
    ack_wait_s: float = 30.0,
    metrics: CentralMetrics | None = None,
) -> ManagedBus:
    """``stream_*``: the NATS streams' replicas and retention (ignored in memory);
    ``batch_size``: events a consumer takes at once; ``ack_wait_s``: when NATS gives a
    silent consumer's events to another; ``metrics``: where publishing and consuming
    are counted."""
    if url.startswith("memory://"):
        from central.infra.bus_memory import MemoryBus

        return MemoryBus(metrics=metrics, batch_size=batch_size)
    if url.startswith(("nats://", "tls://")):
        from central.infra.bus_nats import NatsBus, StreamLimits

        return NatsBus(
            url,
            namespace=namespace,
            limits=StreamLimits(stream_replicas, stream_max_age_s),
            fetch_batch=batch_size,
            ack_wait_s=ack_wait_s,
            metrics=metrics,
        )
    raise ValueError(f"unsupported bus URL {url!r}")
