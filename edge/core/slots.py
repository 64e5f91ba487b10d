"""Live state of a site's parking slots: the functional core, no I/O.

Every slot has one state a technician, central and an entrance sign can trust. It comes
from the slot's occupancy sensor (debounced, watched for silence and ``offline``),
combined with what the slot's charger connector says, plus reservations and the
technician's out-of-service flag::

    state, outputs = decide(state, event, now)

Inputs are the events below (``SensorReported``, ``ConnectorReported``, ``Tick``...);
outputs are past-tense facts (``SlotStateChanged``, ``VisitStarted``,
``ConditionRaised``...) for the shell to persist, publish and send to central. The clock
is always passed in: the same events at the same times give the same outputs, visit ids
included, so a replay is stable.

Timers (debounce, stale sensors, derived conditions, reservation expiry) only move when
``decide`` runs: the shell feeds a ``Tick`` at ``next_deadline(state)`` or once a second.
A change confirmed late is still dated when it happened (a visit's arrival is the first
reading of the car, not the tick that confirmed it).

Derived conditions, on slots with a charger only:

``ev_slot_blocked``
    the sensor says occupied, the connector says nothing is plugged (available or
    reserved), and nothing was plugged in during this visit, for ``ev_slot_blocked_after``.
``charged_idle``
    the sensor says occupied while the connector is ``suspended_ev`` or ``finishing``
    (the EV stopped taking energy or the transaction ended, cable still in), for
    ``charged_idle_after``.
``sensor_suspect``
    the sensor contradicts its charger for ``sensor_suspect_after``: the connector
    reports a plugged or charging vehicle while the sensor says free; or, the reverse,
    the vehicle of this visit was unplugged (connector available again) while the sensor
    keeps saying occupied.

All three need a sensor that is heard, fresh and online; they clear as soon as their
facts stop holding.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, NewType

from edge.core.ids import ChargerId, SessionId, SlotId
from edge.core.model import ConnectorStatus

if TYPE_CHECKING:
    from edge.config import SlotConfig, SlotTimingSection

SensorId = NewType("SensorId", str)
EvseId = NewType("EvseId", int)
VisitId = NewType("VisitId", str)
ReservationId = NewType("ReservationId", str)


class SlotState(StrEnum):
    FREE = "free"
    OCCUPIED = "occupied"
    RESERVED = "reserved"
    OUT_OF_SERVICE = "out_of_service"
    UNKNOWN = "unknown"


class Condition(StrEnum):
    EV_SLOT_BLOCKED = "ev_slot_blocked"
    CHARGED_IDLE = "charged_idle"
    SENSOR_SUSPECT = "sensor_suspect"


PLUGGED_IN = frozenset(
    {
        ConnectorStatus.OCCUPIED,
        ConnectorStatus.CHARGING,
        ConnectorStatus.SUSPENDED_EV,
        ConnectorStatus.SUSPENDED_EVSE,
        ConnectorStatus.FINISHING,
    }
)
NOTHING_PLUGGED = frozenset({ConnectorStatus.AVAILABLE, ConnectorStatus.RESERVED})
CHARGED = frozenset({ConnectorStatus.SUSPENDED_EV, ConnectorStatus.FINISHING})

# ---------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class SlotSpec:
    slot_id: SlotId
    slot_type: str = "standard"
    sensor_id: SensorId | None = None
    charger_id: ChargerId | None = None
    evse_id: EvseId | None = None
    connector_id: int = 1
    label: str = ""
    # this sensor's own silence limit (sensors with a slow heartbeat); None: the site's
    sensor_stale_after: timedelta | None = None


@dataclass(frozen=True)
class Timing:
    debounce: timedelta = timedelta(seconds=5)
    sensor_stale_after: timedelta = timedelta(seconds=900)
    low_battery: int = 20  # percent; at or below is low
    ev_slot_blocked_after: timedelta = timedelta(seconds=600)
    charged_idle_after: timedelta = timedelta(seconds=900)
    sensor_suspect_after: timedelta = timedelta(seconds=300)

    @classmethod
    def from_config(cls, section: SlotTimingSection) -> Timing:
        return cls(
            debounce=timedelta(seconds=section.debounce),
            sensor_stale_after=timedelta(seconds=section.sensor_stale_after),
            low_battery=section.low_battery,
            ev_slot_blocked_after=timedelta(seconds=section.ev_slot_blocked_after),
            charged_idle_after=timedelta(seconds=section.charged_idle_after),
            sensor_suspect_after=timedelta(seconds=section.sensor_suspect_after),
        )

    def hold_for(self, condition: Condition) -> timedelta:
        return {
            Condition.EV_SLOT_BLOCKED: self.ev_slot_blocked_after,
            Condition.CHARGED_IDLE: self.charged_idle_after,
            Condition.SENSOR_SUSPECT: self.sensor_suspect_after,
        }[condition]


_VISIT_NAMESPACE = uuid.UUID("7d7f4b5e-8a59-4c4e-9d3f-2f3b0c1a9e61")


def deterministic_visit_id(slot_id: SlotId, arrived_at: datetime) -> VisitId:
    """A UUIDv5 of (slot, arrival): the same arrival always gets the same id."""
    return VisitId(str(uuid.uuid5(_VISIT_NAMESPACE, f"{slot_id}|{arrived_at.isoformat()}")))


@dataclass(frozen=True)
class Layout:
    """The site's slots and the model's times; built once from the site config."""

    slots: tuple[SlotSpec, ...]
    timing: Timing = field(default_factory=Timing)
    visit_ids: Callable[[SlotId, datetime], VisitId] = deterministic_visit_id
    by_sensor: Mapping[SensorId, SlotId] = field(init=False, repr=False, compare=False)
    by_connector: Mapping[tuple[ChargerId, EvseId], SlotId] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        by_sensor = {s.sensor_id: s.slot_id for s in self.slots if s.sensor_id is not None}
        by_connector = {
            (s.charger_id, s.evse_id): s.slot_id
            for s in self.slots
            if s.charger_id is not None and s.evse_id is not None
        }
        object.__setattr__(self, "by_sensor", by_sensor)
        object.__setattr__(self, "by_connector", by_connector)

    @classmethod
    def from_config(
        cls,
        slots: Sequence[SlotConfig],
        timing: SlotTimingSection,
        visit_ids: Callable[[SlotId, datetime], VisitId] = deterministic_visit_id,
    ) -> Layout:
        return cls(
            slots=tuple(
                SlotSpec(
                    slot_id=SlotId(s.id),
                    slot_type=s.type,
                    sensor_id=SensorId(s.sensor) if s.sensor else None,
                    charger_id=ChargerId(s.charger) if s.charger else None,
                    evse_id=EvseId(s.evse) if s.evse is not None else None,
                    connector_id=s.connector,
                    label=s.label,
                    sensor_stale_after=_seconds(getattr(s, "sensor_stale_after", None)),
                )
                for s in slots
            ),
            timing=Timing.from_config(timing),
            visit_ids=visit_ids,
        )


def _seconds(value: float | None) -> timedelta | None:
    return timedelta(seconds=value) if value is not None else None


# ---------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class SensorReported:
    """A valid reading; ``measured_at``: when it was taken, if the sensor said so and its
    clock is believed (see edge.sensors.clock), else None (now)."""

    sensor_id: SensorId
    occupied: bool
    battery: int | None = None
    rssi: int | None = None
    measured_at: datetime | None = None


@dataclass(frozen=True)
class SensorAvailability:
    sensor_id: SensorId
    online: bool


@dataclass(frozen=True)
class ConnectorReported:
    """A charger's connector status; ``evse_id`` is the 2.0.1 EVSE id or 1.6 connector id."""

    charger_id: ChargerId
    evse_id: EvseId
    status: ConnectorStatus


@dataclass(frozen=True)
class SessionLinked:
    slot_id: SlotId
    session_id: SessionId


@dataclass(frozen=True)
class SessionEnded:
    """The charging session ended; the visit keeps its id, the slot forgets it."""

    slot_id: SlotId
    session_id: SessionId


@dataclass(frozen=True)
class ReservationSet:
    slot_id: SlotId
    reservation_id: ReservationId
    until: datetime | None = None


@dataclass(frozen=True)
class ReservationCleared:
    slot_id: SlotId
    reservation_id: ReservationId


@dataclass(frozen=True)
class OutOfServiceSet:
    slot_id: SlotId
    on: bool
    reason: str = ""


@dataclass(frozen=True)
class Tick:
    at: datetime


SlotEvent = (
    SensorReported
    | SensorAvailability
    | ConnectorReported
    | SessionLinked
    | SessionEnded
    | ReservationSet
    | ReservationCleared
    | OutOfServiceSet
    | Tick
)


# ---------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class SlotStateChanged:
    slot_id: SlotId
    state: SlotState
    previous: SlotState
    since: datetime


@dataclass(frozen=True)
class VisitStarted:
    visit_id: VisitId
    slot_id: SlotId
    arrived_at: datetime
    reservation_id: ReservationId | None


@dataclass(frozen=True)
class VisitEnded:
    visit_id: VisitId
    slot_id: SlotId
    arrived_at: datetime
    departed_at: datetime
    duration: timedelta
    reservation_id: ReservationId | None
    session_id: SessionId | None


@dataclass(frozen=True)
class VisitSessionLinked:
    """A charging session was tied to the slot's current visit."""

    visit_id: VisitId
    slot_id: SlotId
    session_id: SessionId


@dataclass(frozen=True)
class ConditionRaised:
    slot_id: SlotId
    condition: Condition
    since: datetime  # when its facts started to hold
    at: datetime  # when it was raised (since + the condition's time, or later)


@dataclass(frozen=True)
class ConditionCleared:
    slot_id: SlotId
    condition: Condition
    since: datetime
    at: datetime


@dataclass(frozen=True)
class SensorLowBattery:
    sensor_id: SensorId
    slot_id: SlotId
    battery: int
    at: datetime


@dataclass(frozen=True)
class SensorWentStale:
    sensor_id: SensorId
    slot_id: SlotId
    last_heard: datetime | None  # None: never heard since the model started
    at: datetime


SlotOutput = (
    SlotStateChanged
    | VisitStarted
    | VisitEnded
    | VisitSessionLinked
    | ConditionRaised
    | ConditionCleared
    | SensorLowBattery
    | SensorWentStale
)


# ---------------------------------------------------------------------------- state


@dataclass(frozen=True)
class Visit:
    visit_id: VisitId
    slot_id: SlotId
    arrived_at: datetime
    reservation_id: ReservationId | None = None
    session_id: SessionId | None = None
    plugged: bool = False  # a vehicle was plugged in during this visit


@dataclass(frozen=True)
class Reservation:
    reservation_id: ReservationId
    until: datetime | None


@dataclass(frozen=True)
class Pending:
    """A raw reading that differs from the debounced occupancy, held since ``since``."""

    occupied: bool
    since: datetime


@dataclass(frozen=True)
class Timed:
    condition: Condition
    since: datetime


@dataclass(frozen=True)
class SlotRecord:
    spec: SlotSpec
    state: SlotState
    since: datetime
    occupied: bool | None = None  # debounced; None: never known
    occupied_since: datetime | None = None
    pending: Pending | None = None
    last_heard: datetime | None = None
    online: bool = True
    stale: bool = False
    battery: int | None = None
    rssi: int | None = None
    low_battery: bool = False
    connector: ConnectorStatus | None = None
    connector_since: datetime | None = None
    session_id: SessionId | None = None
    reservation: Reservation | None = None
    out_of_service: bool = False
    out_of_service_reason: str = ""
    visit: Visit | None = None
    candidates: tuple[Timed, ...] = ()  # conditions whose facts hold, not yet raised
    conditions: tuple[Timed, ...] = ()  # raised conditions

    @property
    def sensor_usable(self) -> bool:
        return self.last_heard is not None and self.online and not self.stale


@dataclass(frozen=True)
class SiteSlots:
    layout: Layout
    started_at: datetime
    slots: Mapping[SlotId, SlotRecord]


def initial_state(layout: Layout, now: datetime, open_visits: Iterable[Visit] = ()) -> SiteSlots:
    """A fresh model. ``open_visits`` are visits persisted before a restart: the slot is
    taken as occupied until its sensor says otherwise (debounced), so they end normally."""
    _require_aware(now)
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
    _require_aware(now)
    layout = state.layout
    out: list[SlotOutput] = []
    slots = dict(state.slots)

    target = _target(layout, event)
    if target is not None and target in slots:
        slots[target] = _apply(slots[target], event, layout.timing, now, out)
    for slot_id, record in slots.items():
        slots[slot_id] = _settle(record, layout, state.started_at, now, out)
    return replace(state, slots=slots), out


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


def _apply(
    rec: SlotRecord, event: SlotEvent, timing: Timing, now: datetime, out: list[SlotOutput]
) -> SlotRecord:
    match event:
        case SensorReported():
            return _on_reading(rec, event, timing, now, out)
        case SensorAvailability(online=online):
            return replace(rec, online=online, pending=None if not online else rec.pending)
        case ConnectorReported(status=status):
            if status == rec.connector:
                return rec
            return replace(rec, connector=status, connector_since=now)
        case SessionLinked(session_id=session_id):
            return replace(rec, session_id=session_id)
        case SessionEnded(session_id=session_id):
            return replace(rec, session_id=None) if rec.session_id == session_id else rec
        case ReservationSet(reservation_id=rid, until=until):
            if until is not None:
                _require_aware(until)
                if until <= now:
                    return rec
            return replace(rec, reservation=Reservation(rid, until))
        case ReservationCleared(reservation_id=rid):
            if rec.reservation is not None and rec.reservation.reservation_id == rid:
                return replace(rec, reservation=None)
            return rec
        case OutOfServiceSet(on=on, reason=reason):
            return replace(rec, out_of_service=on, out_of_service_reason=reason if on else "")
        case Tick():
            return rec


def _on_reading(
    rec: SlotRecord,
    reading: SensorReported,
    timing: Timing,
    now: datetime,
    out: list[SlotOutput],
) -> SlotRecord:
    # Which readings count and when they were taken is the shell's judgement of the
    # sensor's clock (edge.sensors.clock): the model applies what it is given, in order.
    measured = reading.measured_at
    if measured is not None:
        _require_aware(measured)
    heard_at = min(now, measured) if measured is not None else now
    last_heard = heard_at if rec.last_heard is None else max(rec.last_heard, heard_at)
    rec = replace(
        rec,
        last_heard=last_heard,
        battery=reading.battery if reading.battery is not None else rec.battery,
        rssi=reading.rssi if reading.rssi is not None else rec.rssi,
    )
    if reading.battery is not None:
        low = reading.battery <= timing.low_battery
        if low and not rec.low_battery and rec.spec.sensor_id is not None:
            out.append(SensorLowBattery(rec.spec.sensor_id, rec.spec.slot_id, reading.battery, now))
        rec = replace(rec, low_battery=low)

    if rec.occupied is None:  # the first reading is believed at once
        return replace(rec, occupied=reading.occupied, occupied_since=now, pending=None)
    if reading.occupied == rec.occupied:
        return replace(rec, pending=None)
    if rec.pending is not None and rec.pending.occupied == reading.occupied:
        return rec
    return replace(rec, pending=Pending(reading.occupied, now))


def _settle(
    rec: SlotRecord, layout: Layout, started_at: datetime, now: datetime, out: list[SlotOutput]
) -> SlotRecord:
    """Move the slot's timers to ``now`` and derive its state, visit and conditions."""
    timing = layout.timing
    spec = rec.spec

    until = rec.reservation.until if rec.reservation is not None else None
    if until is not None and until <= now:
        rec = replace(rec, reservation=None)

    if rec.pending is not None and now - rec.pending.since >= timing.debounce:
        rec = replace(
            rec, occupied=rec.pending.occupied, occupied_since=rec.pending.since, pending=None
        )

    if spec.sensor_id is not None:
        heard_from = rec.last_heard if rec.last_heard is not None else started_at
        stale = now - heard_from > (spec.sensor_stale_after or timing.sensor_stale_after)
        if stale and not rec.stale:
            out.append(SensorWentStale(spec.sensor_id, spec.slot_id, rec.last_heard, now))
        rec = replace(rec, stale=stale)
    elif spec.charger_id is not None and rec.connector is not None:
        # no sensor: an EV slot is as occupied as its connector is plugged
        plugged = rec.connector in PLUGGED_IN
        if plugged != rec.occupied:
            rec = replace(rec, occupied=plugged, occupied_since=rec.connector_since or now)

    rec = _settle_visit(rec, layout, now, out)
    rec = _settle_state(rec, now, out)
    return _settle_conditions(rec, timing, now, out)


def _settle_visit(
    rec: SlotRecord, layout: Layout, now: datetime, out: list[SlotOutput]
) -> SlotRecord:
    visit = rec.visit
    if rec.occupied is True and visit is None:
        arrived = rec.occupied_since or now
        reservation = rec.reservation
        visit = Visit(
            visit_id=layout.visit_ids(rec.spec.slot_id, arrived),
            slot_id=rec.spec.slot_id,
            arrived_at=arrived,
            reservation_id=reservation.reservation_id if reservation is not None else None,
        )
        out.append(VisitStarted(visit.visit_id, visit.slot_id, arrived, visit.reservation_id))
        rec = replace(rec, visit=visit, reservation=None)  # the reservation is used
    elif rec.occupied is False and visit is not None:
        departed = max(rec.occupied_since or now, visit.arrived_at)
        out.append(
            VisitEnded(
                visit_id=visit.visit_id,
                slot_id=visit.slot_id,
                arrived_at=visit.arrived_at,
                departed_at=departed,
                duration=departed - visit.arrived_at,
                reservation_id=visit.reservation_id,
                session_id=visit.session_id,
            )
        )
        return replace(rec, visit=None, session_id=None)

    if visit is None:
        if rec.session_id is not None and rec.connector in NOTHING_PLUGGED:
            rec = replace(rec, session_id=None)  # a session that never met a visit
        return rec
    if rec.connector in PLUGGED_IN and not visit.plugged:
        visit = replace(visit, plugged=True)
    if rec.session_id is not None and visit.session_id != rec.session_id:
        visit = replace(visit, session_id=rec.session_id)
        out.append(VisitSessionLinked(visit.visit_id, visit.slot_id, rec.session_id))
    return replace(rec, visit=visit)


def _settle_state(rec: SlotRecord, now: datetime, out: list[SlotOutput]) -> SlotRecord:
    spec = rec.spec
    state: SlotState
    if rec.out_of_service:
        state = SlotState.OUT_OF_SERVICE
    elif spec.sensor_id is not None and not rec.sensor_usable:
        state = SlotState.UNKNOWN
    elif rec.occupied is True:
        state = SlotState.OCCUPIED
    elif rec.reservation is not None:
        state = SlotState.RESERVED
    elif rec.occupied is False:
        state = SlotState.FREE
    else:
        state = SlotState.UNKNOWN
    if state == rec.state:
        return rec
    since = now
    occupancy = (SlotState.FREE, SlotState.OCCUPIED)
    if state in occupancy and rec.state in occupancy and rec.occupied_since is not None:
        since = max(rec.since, rec.occupied_since)  # dated when the car came or went
    out.append(SlotStateChanged(spec.slot_id, state, rec.state, since))
    return replace(rec, state=state, since=since)


def _facts(rec: SlotRecord) -> dict[Condition, bool]:
    if rec.spec.charger_id is None or not rec.sensor_usable or rec.connector is None:
        return {c: False for c in Condition}
    occupied = rec.occupied is True
    plugged = rec.connector in PLUGGED_IN
    nothing = rec.connector in NOTHING_PLUGGED
    plugged_this_visit = rec.visit is not None and rec.visit.plugged
    return {
        Condition.EV_SLOT_BLOCKED: occupied and nothing and not plugged_this_visit,
        Condition.CHARGED_IDLE: occupied and rec.connector in CHARGED,
        Condition.SENSOR_SUSPECT: (plugged and rec.occupied is False)
        or (occupied and nothing and plugged_this_visit),
    }


def _settle_conditions(
    rec: SlotRecord, timing: Timing, now: datetime, out: list[SlotOutput]
) -> SlotRecord:
    facts = _facts(rec)
    candidates = {t.condition: t.since for t in rec.candidates}
    raised = {t.condition: t.since for t in rec.conditions}
    for condition in Condition:
        if not facts[condition]:
            candidates.pop(condition, None)
            since = raised.pop(condition, None)
            if since is not None:
                out.append(ConditionCleared(rec.spec.slot_id, condition, since, now))
            continue
        if condition in raised:
            continue
        if condition not in candidates:
            # the facts hold since the later of the two changes they rest on
            starts = [t for t in (rec.occupied_since, rec.connector_since) if t is not None]
            candidates[condition] = min(max(starts, default=now), now)
        since = candidates[condition]
        if now - since >= timing.hold_for(condition):
            del candidates[condition]
            raised[condition] = since
            out.append(ConditionRaised(rec.spec.slot_id, condition, since, now))
    new_candidates = tuple(Timed(c, s) for c, s in sorted(candidates.items()))
    new_conditions = tuple(Timed(c, s) for c, s in sorted(raised.items()))
    if new_candidates == rec.candidates and new_conditions == rec.conditions:
        return rec
    return replace(rec, candidates=new_candidates, conditions=new_conditions)


def next_deadline(state: SiteSlots) -> datetime | None:
    """The earliest time at which a ``Tick`` can change something (None: nothing pending)."""
    timing = state.layout.timing
    times: list[datetime] = []
    for rec in state.slots.values():
        if rec.pending is not None:
            times.append(rec.pending.since + timing.debounce)
        if rec.spec.sensor_id is not None and not rec.stale:
            heard_from = rec.last_heard if rec.last_heard is not None else state.started_at
            stale_after = rec.spec.sensor_stale_after or timing.sensor_stale_after
            times.append(heard_from + stale_after + _EPSILON)
        if rec.reservation is not None and rec.reservation.until is not None:
            times.append(rec.reservation.until)
        times.extend(t.since + timing.hold_for(t.condition) for t in rec.candidates)
    return min(times, default=None)


_EPSILON = timedelta(microseconds=1)


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
    rec = state.slots[slot_id]
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

    def views(self) -> list[SlotView]:
        return slot_views(self.state)

    def summary(self) -> SiteSummary:
        return summary(self.views())

    def next_deadline(self) -> datetime | None:
        return next_deadline(self.state)


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: the slot model needs aware UTC times")
