"""The site-wide slot model: every slot's record, ``decide``, views and the summary.

::

    state, outputs = decide(state, event, now)

``decide`` routes an event (:mod:`edge.core.slots.events`) to its slot, then settles every
slot at ``now`` (:mod:`edge.core.slots.machine`). The clock is always passed in: the same
events at the same times give the same outputs, visit ids included, so a replay is stable.
Timers only move when ``decide`` runs: the shell feeds a ``Tick`` at
``next_deadline(state)`` or once a second.

Views (:class:`SlotView`, :class:`SiteSummary`) are what the outside world sees: the
retained MQTT states, the local API and the web UI. :class:`SlotModel` is the imperative
shell's handle on all of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from edge.core.ids import ChargerId, SlotId
from edge.core.model import ConnectorStatus
from edge.core.slots.events import (
    ConnectorReported,
    SensorAvailability,
    SensorReported,
    SlotEvent,
    SlotOutput,
    SlotViewChanged,
    Tick,
)
from edge.core.slots.layout import Layout
from edge.core.slots.machine import SlotRecord, Visit, apply_event, settle, slot_deadlines
from edge.core.slots.values import (
    Condition,
    EvseId,
    ReservationId,
    SensorId,
    SlotState,
    VisitId,
    require_aware,
)

# ---------------------------------------------------------------------------- state


@dataclass(frozen=True)
class SiteSlots:
    layout: Layout
    started_at: datetime
    slots: Mapping[SlotId, SlotRecord]


def initial_state(layout: Layout, now: datetime, open_visits: Iterable[Visit] = ()) -> SiteSlots:
    """A fresh model. ``open_visits`` are visits persisted before a restart: the slot is
    taken as occupied until its sensor says otherwise (debounced), so they end normally."""
    require_aware(now)
    visits = {v.slot_id: v for v in open_visits}
    slots: dict[SlotId, SlotRecord] = {}
    for spec in layout.slots:
        record = SlotRecord(spec=spec, state=SlotState.UNKNOWN, since=now)
        visit = visits.get(spec.slot_id)
        if visit is not None:
            record = replace(
                record,
                occupied=True,
                occupied_since=visit.arrived_at,
                visit=visit,
                session_id=visit.session_id,
            )
        slots[spec.slot_id] = record
    state = SiteSlots(layout=layout, started_at=now, slots=slots)
    return state


# ---------------------------------------------------------------------------- decide


def decide(state: SiteSlots, event: SlotEvent, now: datetime) -> tuple[SiteSlots, list[SlotOutput]]:
    """Apply one event at ``now``; return the new state and what happened.

    Events about unknown sensors, connectors or slots change nothing.
    """
    require_aware(now)
    layout = state.layout
    out: list[SlotOutput] = []
    slots = dict(state.slots)

    target = _target(layout, event)
    if target is not None and target in slots:
        slots[target] = apply_event(slots[target], event, layout.timing, now, out)
    for slot_id, record in slots.items():
        slots[slot_id] = settle(record, layout, state.started_at, now, out)
    out.extend(_views_changed_silently(state.slots, slots, out))
    return replace(state, slots=slots), out


def _views_changed_silently(
    before: Mapping[SlotId, SlotRecord], after: Mapping[SlotId, SlotRecord], out: list[SlotOutput]
) -> list[SlotViewChanged]:
    """The slots whose view changed although no output names them: without this a
    connector's new status would reach no retained MQTT state and no open page."""
    named = touched_slots(out)
    changed: list[SlotViewChanged] = []
    for slot_id, old in before.items():
        new = after[slot_id]
        if slot_id in named or new is old or new == old:
            continue
        if record_view(old) != record_view(new):
            changed.append(SlotViewChanged(slot_id))
    return changed


def _target(layout: Layout, event: SlotEvent) -> SlotId | None:
    match event:
        case SensorReported(sensor_id=sensor_id) | SensorAvailability(sensor_id=sensor_id):
            return layout.by_sensor.get(sensor_id)
        case ConnectorReported(charger_id=charger_id, evse_id=evse_id):
            return layout.by_connector.get((charger_id, evse_id))
        case Tick():
            return None
        case _:
            return event.slot_id


def next_deadline(state: SiteSlots) -> datetime | None:
    """The earliest time at which a ``Tick`` can change something (None: nothing pending)."""
    timing = state.layout.timing
    times = [
        moment
        for rec in state.slots.values()
        for moment in slot_deadlines(rec, timing, state.started_at)
    ]
    return min(times, default=None)


# ---------------------------------------------------------------------------- views


@dataclass(frozen=True)
class SlotView:
    """One slot as the outside world sees it (the retained MQTT state, the web UI)."""

    slot_id: SlotId
    slot_type: str
    state: SlotState
    since: datetime
    conditions: tuple[Condition, ...]
    sensor_id: SensorId | None
    sensor_status: str | None  # ok, offline, stale, never_heard; None without a sensor
    battery: int | None
    low_battery: bool
    charger_id: ChargerId | None
    evse_id: EvseId | None
    connector_id: int | None
    connector_status: ConnectorStatus | None
    visit_id: VisitId | None
    reservation_id: ReservationId | None
    out_of_service_reason: str


def slot_view(state: SiteSlots, slot_id: SlotId) -> SlotView:
    return record_view(state.slots[slot_id])


def record_view(rec: SlotRecord) -> SlotView:
    spec = rec.spec
    sensor_status: str | None = None
    if spec.sensor_id is not None:
        if rec.last_heard is None:
            sensor_status = "never_heard"
        elif not rec.online:
            sensor_status = "offline"
        elif rec.stale:
            sensor_status = "stale"
        else:
            sensor_status = "ok"
    return SlotView(
        slot_id=spec.slot_id,
        slot_type=spec.slot_type,
        state=rec.state,
        since=rec.since,
        conditions=tuple(t.condition for t in rec.conditions),
        sensor_id=spec.sensor_id,
        sensor_status=sensor_status,
        battery=rec.battery,
        low_battery=rec.low_battery,
        charger_id=spec.charger_id,
        evse_id=spec.evse_id,
        connector_id=spec.connector_id if spec.charger_id is not None else None,
        connector_status=rec.connector,
        visit_id=rec.visit.visit_id if rec.visit is not None else None,
        reservation_id=rec.reservation.reservation_id if rec.reservation is not None else None,
        out_of_service_reason=rec.out_of_service_reason,
    )


def slot_views(state: SiteSlots) -> list[SlotView]:
    return [slot_view(state, slot_id) for slot_id in state.slots]


@dataclass(frozen=True)
class SiteSummary:
    by_state: Mapping[SlotState, int]
    free_by_type: Mapping[str, int]
    total_by_type: Mapping[str, int]
    sensors_offline: int  # offline, stale or never heard
    sensors_low_battery: int


def summary(views: Iterable[SlotView]) -> SiteSummary:
    """Counts by state (every state present, zeros included) and free slots by type."""
    by_state = dict.fromkeys(SlotState, 0)
    free: dict[str, int] = {}
    total: dict[str, int] = {}
    offline = low = 0
    for view in views:
        by_state[view.state] += 1
        total[view.slot_type] = total.get(view.slot_type, 0) + 1
        free.setdefault(view.slot_type, 0)
        if view.state == SlotState.FREE:
            free[view.slot_type] += 1
        if view.sensor_status not in (None, "ok"):
            offline += 1
        if view.low_battery:
            low += 1
    return SiteSummary(by_state, free, total, offline, low)


def touched_slots(outputs: Iterable[SlotOutput]) -> set[SlotId]:
    """The slots whose published view may have changed with these outputs."""
    return {o.slot_id for o in outputs}


class SlotModel:
    """The imperative shell's handle on the core: holds the current state.

    >>> model = SlotModel(layout, now)
    >>> outputs = model.handle(SensorReported(SensorId("S-A1"), True), now)
    """

    def __init__(self, layout: Layout, now: datetime, open_visits: Iterable[Visit] = ()) -> None:
        self.state = initial_state(layout, now, open_visits)

    def handle(self, event: SlotEvent, now: datetime) -> list[SlotOutput]:
        self.state, outputs = decide(self.state, event, now)
        return outputs

    def view(self, slot_id: SlotId) -> SlotView:
        return slot_view(self.state, slot_id)

    def slot_in_use_by(self, reservation_id: str) -> SlotId | None:
        """The slot whose current visit came with ``reservation_id`` (the vehicle is there)."""
        for slot_id, rec in self.state.slots.items():
            if rec.visit is not None and rec.visit.reservation_id == reservation_id:
                return slot_id
        return None

    def reservations_at(self, charger_id: ChargerId) -> list[ReservationId]:
        """The reservations held at a charger's slots: waiting for their vehicle, or used by
        the visit now in the slot (the charger may still hold its connector for them)."""
        found: list[ReservationId] = []
        for rec in self.state.slots.values():
            if rec.spec.charger_id != charger_id:
                continue
            if rec.reservation is not None:
                found.append(rec.reservation.reservation_id)
            if rec.visit is not None and rec.visit.reservation_id is not None:
                found.append(rec.visit.reservation_id)
        return found

    def views(self) -> list[SlotView]:
        return slot_views(self.state)

    def summary(self) -> SiteSummary:
        return summary(self.views())

    def next_deadline(self) -> datetime | None:
        return next_deadline(self.state)
