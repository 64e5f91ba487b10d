"""Live updates for the web UI: an in-process fan-out of the site's changes.

The hub is a site observer (chargers, EVSEs, sessions) and a slot publisher (slot views
and the summary). Each change becomes one JSON event, serialized once as a server-sent
event and put on every subscriber's bounded queue. A subscriber that falls behind (its
queue is full) is dropped rather than slowing the site down: its browser reconnects on
its own and fetches a fresh snapshot. Subscriptions belong to the request that streams
them (``async with hub.subscribe()``); :meth:`LiveHub.close` ends them all at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, Final

import orjson
import structlog

from edge.core.documents import charger_document, session_document
from edge.core.slots.documents import slot_document, summary_document
from edge.core.slots.model import SiteSummary, SlotView
from edge.services.changes import SiteChange
from edge.services.site import Site
from edge.ui.alerts import Alert

log = structlog.get_logger(__name__)
QUEUE_SIZE: Final = 512
_CLOSED: Final = b""


class Subscriber:
    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(size)
        self.closed = False

    def offer(self, frame: bytes) -> bool:
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            return False
        return True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(_CLOSED)

    async def next(self, quiet: float) -> bytes | None:
        """The next frame; None after ``quiet`` s without one; ``b""`` once closed."""
        try:
            async with asyncio.timeout(quiet):
                return await self.queue.get()
        except TimeoutError:
            return None


def sse_frame(event: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(event) + b"\n\n"


class LiveHub:
    def __init__(
        self,
        site: Site,
        alerts: Callable[[], list[Alert]],
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.site = site
        self._alerts = alerts
        self._queue_size = queue_size
        self._subscribers: set[Subscriber] = set()
        self._last_alerts: list[dict[str, object]] | None = None
        self._closed = False

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscriber]:
        subscriber = Subscriber(self._queue_size)
        if self._closed:
            subscriber.close()
        else:
            self._subscribers.add(subscriber)
        try:
            yield subscriber
        finally:
            self._subscribers.discard(subscriber)

    def close(self) -> None:
        """End every stream (the daemon is stopping) and refuse new ones."""
        self._closed = True
        for subscriber in list(self._subscribers):
            subscriber.close()
        self._subscribers.clear()

    def broadcast(self, event: dict[str, Any]) -> None:
        if not self._subscribers:
            return
        frame = sse_frame(event)
        for subscriber in list(self._subscribers):
            if not subscriber.offer(frame):
                self._subscribers.discard(subscriber)
                subscriber.close()
                log.warning("ui.live.dropped", reason="client too slow", kind=event["type"])

    # --- site observer -----------------------------------------------------------------

    def on_site_change(self, change: SiteChange) -> None:
        if not self._subscribers:  # runs for every meter value: nothing to do unwatched
            return
        charger = self.site.chargers.get(change.charger_id)
        if change.kind in ("session", "meter") and change.session_id is not None:
            session = self.site.active_session(change.session_id)
            self.broadcast(
                {
                    "type": "session",
                    "charger_id": change.charger_id,
                    "session_id": change.session_id,
                    "active": session is not None,
                    "session": session_document(session) if session is not None else None,
                }
            )
            return
        if charger is None:
            return
        self.broadcast(
            {
                "type": change.kind,  # "charger" or "evse"
                "charger_id": change.charger_id,
                "evse_id": change.evse_id,
                "charger": charger_document(charger, self.site.active.of_charger(charger.id)),
            }
        )
        self._publish_alerts()

    # --- slot publisher ----------------------------------------------------------------

    def publish_slot(self, view: SlotView) -> None:
        self.broadcast({"type": "slot", "slot": slot_document(self.site.config.site.id, view)})

    def publish_summary(self, summary: SiteSummary, at: datetime) -> None:
        document = summary_document(self.site.config.site.id, summary, at)
        self.broadcast({"type": "summary", "summary": document})
        self._publish_alerts()

    def _publish_alerts(self) -> None:
        if not self._subscribers:
            self._last_alerts = None
            return
        current = [alert.as_json() for alert in self._alerts()]
        if current != self._last_alerts:
            self._last_alerts = current
            self.broadcast({"type": "alerts", "alerts": current})
