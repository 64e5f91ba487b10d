"""One slot's state machine: its record, how an event changes it, how time settles it.

A slot's state comes from its occupancy sensor (debounced, watched for silence and
``offline``), combined with what the slot's charger connector says, plus reservations and
the technician's out-of-service flag. :func:`apply_event` records what one event says;
:func:`settle` then moves the slot's timers to ``now`` and derives its state, visit and
conditions, appending what happened to ``out``. Timers (debounce, stale sensors, derived
conditions, reservation expiry) only move when the model runs: :func:`slot_deadlines` says
when it should next. A change confirmed late is still dated when it happened (a visit's
arrival is the first reading of the car, not the tick that confirmed it).

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

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from edge.core.ids import SessionId, SlotId
from edge.core.model import PLUGGED_IN, ConnectorStatus
from edge.core.slots.events import (
    ConditionCleared,
    ConditionRaised,
    ConnectorReported,
    OutOfServiceSet,
    ReservationCleared,
    ReservationSet,
    SensorAvailability,
    SensorLowBattery,
    SensorReported,
    SensorWentStale,
    SessionEnded,
    SessionLinked,
    SlotEvent,
    SlotOutput,
    SlotStateChanged,
    Tick,
    VisitEnded,
    VisitSessionLinked,
    VisitStarted,
)
from edge.core.slots.layout import Layout, SlotSpec, Timing
from edge.core.slots.values import Condition, ReservationId, SlotState, VisitId, require_aware

NOTHING_PLUGGED = frozenset({ConnectorStatus.AVAILABLE, ConnectorStatus.RESERVED})
CHARGED = frozenset({ConnectorStatus.SUSPENDED_EV, ConnectorStatus.FINISHING})

# a sensor goes stale strictly after its limit: the tick must come just past it
_EPSILON = timedelta(microseconds=1)


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


# ---------------------------------------------------------------------------- events


def apply_event(
    rec: SlotRecord, event: SlotEvent, timing: Timing, now: datetime, out: list[SlotOutput]
) -> SlotRecord:
    """Record what ``event`` says about this slot (its consequences come with :func:`settle`)."""
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
                require_aware(until)
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
        require_aware(measured)
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


# ---------------------------------------------------------------------------- time


def settle(
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


def slot_deadlines(rec: SlotRecord, timing: Timing, started_at: datetime) -> list[datetime]:
    """The times at which this slot's timers can change something, in no order."""
    times: list[datetime] = []
    if rec.pending is not None:
        times.append(rec.pending.since + timing.debounce)
    if rec.spec.sensor_id is not None and not rec.stale:
        heard_from = rec.last_heard if rec.last_heard is not None else started_at
        stale_after = rec.spec.sensor_stale_after or timing.sensor_stale_after
        times.append(heard_from + stale_after + _EPSILON)
    if rec.reservation is not None and rec.reservation.until is not None:
        times.append(rec.reservation.until)
    times.extend(t.since + timing.hold_for(t.condition) for t in rec.candidates)
    return times
