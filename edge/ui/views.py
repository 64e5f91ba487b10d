"""What each page shows, gathered from the live site, the slot model and the store.

Plain dictionaries and lists for the templates; the live state is read from memory, the
history from SQLite through the store's reader (never on the event loop).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common.timestamps import format_timestamp
from edge.core.documents import charger_document, session_document
from edge.core.ids import ChargerId
from edge.core.model import Session
from edge.core.paging import Key, encode_cursor
from edge.core.slots.documents import slot_document, summary_document
from edge.core.slots.model import SlotView
from edge.ocpp.server import OcppServer
from edge.services.site import Clock, Site
from edge.services.slots import SlotService
from edge.services.users import audit_entries
from edge.storage import paged_reads
from edge.storage import site_sql as repo
from edge.ui import power
from edge.ui.alerts import Alert, site_alerts

TRIGGER_MESSAGES = (
    "StatusNotification",
    "Heartbeat",
    "MeterValues",
    "BootNotification",
    "FirmwareStatusNotification",
)
EVENT_TYPES = ("charger.", "charging.", "parking.", "sensor.", "command.")


@dataclass(frozen=True)
class SiteViews:
    site: Site
    slots: SlotService
    server: OcppServer
    clock: Clock

    # --- live state ----------------------------------------------------------------

    @property
    def site_id(self) -> str:
        return self.site.config.site.id

    def slot_views(self) -> list[SlotView]:
        return self.slots.model.views() if self.slots.model is not None else []

    def slot_documents(self) -> list[dict[str, Any]]:
        return [slot_document(self.site_id, view) for view in self.slot_views()]

    def summary(self) -> dict[str, Any]:
        assert self.slots.model is not None
        return summary_document(self.site_id, self.slots.model.summary(), self.clock())

    def chargers(self) -> list[dict[str, Any]]:
        rows = self.site.charger_documents()
        for view in rows:
            view["evses"] = [e for e in view["evses"] if e["evse_id"] > 0]
            view["power_w"] = sum(s["power_w"] or 0 for s in view["active_sessions"])
        return rows

    def alerts(self) -> list[Alert]:
        return site_alerts(
            self.slot_views(),
            self.site.chargers.values(),
            (c.id for c in self.site.config.chargers),
        )

    def active_sessions(self) -> list[dict[str, Any]]:
        found = sorted(self.site.active_sessions(), key=lambda s: s.started_at, reverse=True)
        return [session_document(s) for s in found]

    def session_documents(self, stored: Iterable[Session]) -> list[dict[str, Any]]:
        """Sessions read from the store, each running one as the site has it now: the
        store's row keeps its start values (energy, power) until the session stops."""
        live = {s.id: s for s in self.site.active_sessions()}
        return [session_document(live.get(s.id, s)) for s in stored]

    def power_now_w(self) -> float:
        """The site's power now: the running sessions' latest readings (the one figure
        the overview's tile and the power charts' "now" show)."""
        return sum(s.power_w or 0.0 for s in self.site.active_sessions())

    def charger_counts(self, chargers: list[dict[str, Any]]) -> dict[str, int]:
        counts = {"total": len(chargers), "connected": 0, "charging": 0, "faulted": 0}
        for row in chargers:
            counts["connected"] += int(bool(row["connected"]))
            counts["charging"] += int(row["state"] == "charging")
            counts["faulted"] += int(row["state"] == "faulted")
        return counts

    def sensors(self) -> list[dict[str, Any]]:
        """Each slot's sensor: status, battery, signal and when it was last heard."""
        if self.slots.model is None:
            return []
        records = self.slots.model.state.slots
        rows = []
        for view in self.slot_views():
            if view.sensor_id is None:
                continue
            record = records[view.slot_id]
            rows.append(
                {
                    "slot_id": view.slot_id,
                    "sensor_id": view.sensor_id,
                    "status": view.sensor_status,
                    "battery": view.battery,
                    "low_battery": view.low_battery,
                    "rssi": record.rssi,
                    "last_heard": record.last_heard,
                    "occupied": record.occupied,
                }
            )
        return rows

    # --- history -------------------------------------------------------------------

    async def power_chart(self, hours: float, limit_w: float | None = None) -> power.Chart:
        """Site power; with ``limit_w`` (the configured limit) the site limit in force too."""
        now = self.clock()

        def read(c: Any) -> tuple[list[power.PowerPoint], list[power.PowerPoint]]:
            points = power.site_power(c, now, hours)
            return points, [] if limit_w is None else power.site_limit(c, now, hours, limit_w)

        points, limit = await self.site.store.read(read)
        # the bucket that ends now is the live figure, the same as the page's "power now"
        points = power.with_now(points, self.power_now_w())
        return power.chart(points, limit=limit, zone=self.site.config.site.zone)

    async def charger_detail(self, charger_id: str, limit: int = 50) -> dict[str, Any] | None:
        charger = self.site.chargers.get(ChargerId(charger_id))
        if charger is None:
            return None
        view = charger_document(charger, self.site.active.of_charger(charger.id))
        view["evses"] = [e for e in view["evses"] if e["evse_id"] > 0]
        view["events"] = await self.site.store.read(
            lambda c: repo.charger_events(c, charger_id, limit)
        )
        connection = self.server.connections.get(charger.id)
        view["messages"] = list(reversed(connection.tail_view(limit))) if connection else []
        recent = await self.site.store.read(
            lambda c: repo.list_sessions(c, charger_id=charger_id, limit=10)
        )
        view["recent_sessions"] = self.session_documents(recent)
        view["slots"] = [v.slot_id for v in self.slot_views() if v.charger_id == charger.id]
        view["configuration"] = await self.site.provisioning.document(charger.id, charger.version)
        return view

    async def session_history(
        self,
        charger: str | None,
        id_tag: str | None,
        status: str | None,
        limit: int,
        after: Key | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of sessions, newest first, and the cursor of the next (or None)."""
        rows = await self.site.store.read(
            lambda c: paged_reads.sessions(
                c, status=status, charger_id=charger, id_tag=id_tag, limit=limit, after=after
            )
        )
        shown = rows[:limit]
        following = None
        if len(rows) > limit:
            following = encode_cursor(
                "sessions", (format_timestamp(shown[-1].started_at), shown[-1].id)
            )
        return self.session_documents(shown), following

    async def events(
        self, kind: str | None, limit: int, after: Key | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the site's events, newest first, and the cursor of the next (or None)."""
        family = kind.rstrip(".") if kind else None
        rows = await self.site.store.read(
            lambda c: paged_reads.site_events(c, family, limit, after)
        )
        shown = [{**r, "time": repo.parse_iso(r["time"])} for r in rows[:limit]]
        following = encode_cursor("events", (shown[-1]["sequence"],)) if len(rows) > limit else None
        return shown, following

    async def audit(self, limit: int) -> list[dict[str, Any]]:
        return await self.site.store.read(lambda c: audit_entries(c, limit))


def as_time(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return repo.parse_iso(value)
