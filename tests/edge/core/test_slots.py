"""The slot model: table-driven cases with a fake clock, and hypothesis properties."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.config import SlotConfig, SlotTimingSection
from edge.core.ids import ChargerId, SessionId, SlotId
from edge.core.model import ConnectorStatus
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
    SlotViewChanged,
    Tick,
    VisitEnded,
    VisitSessionLinked,
    VisitStarted,
)
from edge.core.slots.layout import Layout, SlotSpec, deterministic_visit_id
from edge.core.slots.machine import Visit
from edge.core.slots.model import (
    SiteSlots,
    SlotModel,
    decide,
    initial_state,
    next_deadline,
    slot_view,
    slot_views,
    summary,
    touched_slots,
)
from edge.core.slots.values import Condition, EvseId, ReservationId, SensorId, SlotState, VisitId

Out = TypeVar("Out")
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
A1, B1, C1, D1 = SlotId("A1"), SlotId("B1"), SlotId("C1"), SlotId("D1")
S_A1, S_B1 = SensorId("S-A1"), SensorId("S-B1")
CP1, CP2 = ChargerId("CP-1"), ChargerId("CP-2")
EVSE1 = EvseId(1)

SLOTS = [
    SlotConfig(id="A1", type="ev", sensor="S-A1", charger="CP-1", evse=1),
    SlotConfig(id="B1", type="standard", sensor="S-B1"),
    SlotConfig(id="C1", type="ev", charger="CP-2", evse=1),  # no sensor
    SlotConfig(id="D1", type="accessible"),  # neither sensor nor charger
]
TIMING = SlotTimingSection(
    debounce=5,
    sensor_stale_after=900,
    low_battery=20,
    ev_slot_blocked_after=600,
    charged_idle_after=900,
    sensor_suspect_after=300,
)
LAYOUT = Layout.from_config(SLOTS, TIMING)


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def occupied(
    sensor: SensorId,
    value: bool = True,
    *,
    battery: int | None = None,
    measured_at: datetime | None = None,
) -> SensorReported:
    return SensorReported(sensor, value, battery=battery, measured_at=measured_at)


def connector(status: ConnectorStatus, charger: ChargerId = CP1) -> ConnectorReported:
    return ConnectorReported(charger, EVSE1, status)


class Site:
    """The model driven by a fake clock: ``at(seconds, event)``."""

    def __init__(self, open_visits: Sequence[Visit] = ()) -> None:
        self.model = SlotModel(LAYOUT, T0, open_visits)
        self.log: list[SlotOutput] = []

    def at(self, seconds: float, event: SlotEvent | None = None) -> list[SlotOutput]:
        now = t(seconds)
        outputs = self.model.handle(event if event is not None else Tick(now), now)
        self.log += outputs
        return outputs

    def state(self, slot: SlotId = A1) -> SlotState:
        return self.model.view(slot).state

    def conditions(self, slot: SlotId = A1) -> tuple[Condition, ...]:
        return self.model.view(slot).conditions


def of(kind: type[Out], outputs: Sequence[SlotOutput]) -> list[Out]:
    return [o for o in outputs if isinstance(o, kind)]


# ------------------------------------------------------------------ occupancy, debounce


def test_first_reading_is_believed_at_once() -> None:
    site = Site()
    outputs = site.at(0, occupied(S_A1))
    assert SlotStateChanged(A1, SlotState.OCCUPIED, SlotState.UNKNOWN, t(0)) in outputs
    assert VisitStarted(deterministic_visit_id(A1, t(0)), A1, t(0), None) in outputs


@pytest.mark.parametrize(
    ("readings", "tick_at", "expected_state", "arrived"),
    [
        # a change must hold the debounce time (5 s) before it counts
        ([(10, True)], 14.9, SlotState.FREE, None),
        ([(10, True)], 15, SlotState.OCCUPIED, 10),
        # flapping at arrival: the last change counts, dated when it happened
        (
            [(10, True), (11, False), (12, True), (13, False), (14, True)],
            18.9,
            SlotState.FREE,
            None,
        ),
        (
            [(10, True), (11, False), (12, True), (13, False), (14, True)],
            19,
            SlotState.OCCUPIED,
            14,
        ),
        # a blip shorter than the debounce is ignored
        ([(10, True), (12, False)], 100, SlotState.FREE, None),
        # the same raw value repeated does not restart the debounce
        ([(10, True), (12, True), (14, True)], 15, SlotState.OCCUPIED, 10),
    ],
)
def test_debounce(
    readings: list[tuple[float, bool]],
    tick_at: float,
    expected_state: SlotState,
    arrived: float | None,
) -> None:
    site = Site()
    site.at(0, occupied(S_A1, False))
    for seconds, value in readings:
        site.at(seconds, occupied(S_A1, value))
    site.at(tick_at)
    assert site.state() == expected_state
    started = of(VisitStarted, site.log)
    assert [v.arrived_at for v in started] == ([t(arrived)] if arrived is not None else [])


def test_departure_ends_the_visit_with_its_duration_and_session() -> None:
    site = Site()
    site.at(0, occupied(S_A1))
    assert site.at(60, SessionLinked(A1, SessionId("sess-1"))) == [
        VisitSessionLinked(deterministic_visit_id(A1, t(0)), A1, SessionId("sess-1"))
    ]
    site.at(3600, occupied(S_A1, False))
    outputs = site.at(3605)
    assert of(VisitEnded, outputs) == [
        VisitEnded(
            visit_id=deterministic_visit_id(A1, t(0)),
            slot_id=A1,
            arrived_at=t(0),
            departed_at=t(3600),
            duration=timedelta(seconds=3600),
            reservation_id=None,
            session_id=SessionId("sess-1"),
        )
    ]
    assert of(SlotStateChanged, outputs) == [
        SlotStateChanged(A1, SlotState.FREE, SlotState.OCCUPIED, t(3600))
    ]
    # the next visit does not inherit the session
    site.at(4000, occupied(S_A1))
    site.at(4005)
    site.at(4100, occupied(S_A1, False))
    last = of(VisitEnded, site.at(4105))
    assert [v.session_id for v in last] == [None]


def test_the_model_applies_a_reading_whatever_its_time() -> None:
    """Which readings count is the shell's judgement of the sensor's clock
    (edge.sensors.clock, tested in test_sensor_clock): a clock set back must not make the
    model ignore its sensor. The sensor's last contact never moves back, though."""
    site = Site()
    site.at(0, occupied(S_A1, True, measured_at=t(-1)))
    site.at(50, occupied(S_A1, False, measured_at=t(-30)))
    site.at(100)
    assert site.state() == SlotState.FREE
    assert site.model.state.slots[A1].last_heard == t(-1)


# ------------------------------------------------------------------ stale, offline, battery


def test_silent_sensor_goes_stale_then_recovers() -> None:
    site = Site()
    site.at(0, occupied(S_B1, False))
    assert site.at(900) == []
    outputs = site.at(900.5)
    assert SensorWentStale(S_B1, B1, t(0), t(900.5)) in outputs
    assert site.state(B1) == SlotState.UNKNOWN
    assert site.model.view(B1).sensor_status == "stale"
    assert of(SensorWentStale, site.at(2000)) == []  # reported once
    site.at(2001, occupied(S_B1, False))
    assert site.state(B1) == SlotState.FREE


def test_a_sensor_can_have_its_own_stale_interval() -> None:
    slow = SlotSpec(B1, sensor_id=S_B1, sensor_stale_after=timedelta(hours=2))
    model = SlotModel(Layout((slow,), LAYOUT.timing), T0)
    model.handle(occupied(S_B1, False), T0)
    assert model.next_deadline() == t(7200.000001)
    assert model.handle(Tick(t(7200)), t(7200)) == []
    assert model.view(B1).state == SlotState.FREE
    model.handle(Tick(t(7201)), t(7201))
    assert model.view(B1).state == SlotState.UNKNOWN


def test_sensor_with_an_old_timestamp_is_stale_at_once() -> None:
    site = Site()
    site.at(1000, occupied(S_B1, True, measured_at=t(1000 - 901)))
    assert site.state(B1) == SlotState.UNKNOWN


def test_sensor_never_heard_goes_stale_after_the_interval_from_start() -> None:
    site = Site()
    site.at(0, occupied(S_A1))
    assert site.state(B1) == SlotState.UNKNOWN
    assert site.model.view(B1).sensor_status == "never_heard"
    outputs = site.at(901)
    assert SensorWentStale(S_B1, B1, None, t(901)) in outputs


def test_offline_sensor_makes_its_slot_unknown_until_online() -> None:
    site = Site()
    site.at(0, occupied(S_B1, True))
    outputs = site.at(10, SensorAvailability(S_B1, online=False))
    assert SlotStateChanged(B1, SlotState.UNKNOWN, SlotState.OCCUPIED, t(10)) in outputs
    assert site.model.summary().sensors_offline >= 1
    # the visit is not ended by a sensor going offline
    assert of(VisitEnded, site.log) == []
    site.at(20, SensorAvailability(S_B1, online=True))
    assert site.state(B1) == SlotState.OCCUPIED


def test_low_battery_is_reported_once_per_crossing() -> None:
    site = Site()
    assert of(SensorLowBattery, site.at(0, occupied(S_B1, False, battery=50))) == []
    assert of(SensorLowBattery, site.at(10, occupied(S_B1, False, battery=20))) == [
        SensorLowBattery(S_B1, B1, 20, t(10))
    ]
    assert of(SensorLowBattery, site.at(20, occupied(S_B1, False, battery=19))) == []
    assert site.model.view(B1).low_battery
    site.at(30, occupied(S_B1, False, battery=100))  # new battery
    assert not site.model.view(B1).low_battery
    assert len(of(SensorLowBattery, site.at(40, occupied(S_B1, False, battery=5)))) == 1


# ------------------------------------------------------------------ reservations, service


def test_reservation_is_used_by_the_next_visit() -> None:
    site = Site()
    site.at(0, occupied(S_B1, False))
    site.at(10, ReservationSet(B1, ReservationId("r-1"), until=t(1000)))
    assert site.state(B1) == SlotState.RESERVED
    site.at(100, occupied(S_B1))
    outputs = site.at(105)
    assert [v.reservation_id for v in of(VisitStarted, outputs)] == ["r-1"]
    site.at(200, occupied(S_B1, False))
    site.at(205)
    assert site.state(B1) == SlotState.FREE  # used, not back to reserved


def test_reservation_expires_or_is_cleared() -> None:
    site = Site()
    site.at(0, occupied(S_B1, False))
    site.at(10, ReservationSet(B1, ReservationId("r-1"), until=t(60)))
    site.at(59)
    assert site.state(B1) == SlotState.RESERVED
    site.at(60)
    assert site.state(B1) == SlotState.FREE
    site.at(70, ReservationSet(B1, ReservationId("r-2")))
    site.at(80, ReservationCleared(B1, ReservationId("other")))
    assert site.state(B1) == SlotState.RESERVED
    site.at(90, ReservationCleared(B1, ReservationId("r-2")))
    assert site.state(B1) == SlotState.FREE


def test_out_of_service_overrides_everything() -> None:
    site = Site()
    site.at(0, occupied(S_B1, True))
    site.at(10, OutOfServiceSet(B1, on=True, reason="paint"))
    assert site.state(B1) == SlotState.OUT_OF_SERVICE
    assert site.model.view(B1).out_of_service_reason == "paint"
    site.at(20, SensorAvailability(S_B1, online=False))
    assert site.state(B1) == SlotState.OUT_OF_SERVICE
    site.at(30, SensorAvailability(S_B1, online=True))
    site.at(40, OutOfServiceSet(B1, on=False))
    assert site.state(B1) == SlotState.OCCUPIED


# ------------------------------------------------------------------ derived conditions


def test_ev_slot_blocked_by_a_car_that_never_plugs_in() -> None:
    site = Site()
    site.at(0, connector(ConnectorStatus.AVAILABLE))
    site.at(0, occupied(S_A1, False))
    site.at(100, occupied(S_A1))
    site.at(105)
    assert site.at(699.9) == []
    outputs = site.at(700)
    assert outputs == [ConditionRaised(A1, Condition.EV_SLOT_BLOCKED, t(100), t(700))]
    assert site.conditions() == (Condition.EV_SLOT_BLOCKED,)
    # plugging in clears it and it does not come back for this visit
    outputs = site.at(800, connector(ConnectorStatus.CHARGING))
    assert outputs == [ConditionCleared(A1, Condition.EV_SLOT_BLOCKED, t(100), t(800))]


def test_ev_slot_not_blocked_while_charger_status_is_unknown_or_plugged() -> None:
    site = Site()
    site.at(0, occupied(S_A1))
    site.at(800, occupied(S_A1))  # heartbeat
    site.at(1500)
    assert site.conditions() == ()
    site.at(1501, connector(ConnectorStatus.OCCUPIED))
    site.at(1600, occupied(S_A1))
    site.at(2400)
    assert site.conditions() == ()


def test_charged_idle_after_charging_stops_and_car_stays() -> None:
    site = Site()
    site.at(0, occupied(S_A1))
    site.at(30, connector(ConnectorStatus.CHARGING))
    for heartbeat in (800, 1600, 2400, 3200):
        site.at(heartbeat, occupied(S_A1))
    site.at(3600, connector(ConnectorStatus.SUSPENDED_EV))
    site.at(3700, connector(ConnectorStatus.FINISHING))  # still idle: the clock keeps running
    site.at(4000, occupied(S_A1))
    assert site.at(4499) == []
    assert site.at(4500) == [ConditionRaised(A1, Condition.CHARGED_IDLE, t(3600), t(4500))]
    site.at(5000, occupied(S_A1, False))
    outputs = site.at(5005)
    assert ConditionCleared(A1, Condition.CHARGED_IDLE, t(3600), t(5005)) in outputs
    assert of(VisitEnded, outputs)


def test_sensor_suspect_when_the_charger_charges_a_car_the_sensor_does_not_see() -> None:
    site = Site()
    site.at(0, occupied(S_A1, False))
    site.at(10, connector(ConnectorStatus.CHARGING))
    assert site.at(309) == []
    assert site.at(310) == [ConditionRaised(A1, Condition.SENSOR_SUSPECT, t(10), t(310))]
    assert site.state() == SlotState.FREE  # the sensor still decides occupancy


def test_sensor_suspect_when_the_car_unplugged_and_the_sensor_still_sees_it() -> None:
    site = Site()
    site.at(0, occupied(S_A1))
    site.at(10, connector(ConnectorStatus.CHARGING))
    site.at(800, occupied(S_A1))  # heartbeats
    site.at(1600, occupied(S_A1))
    site.at(2000, connector(ConnectorStatus.AVAILABLE))
    site.at(2300)
    assert site.conditions() == (Condition.SENSOR_SUSPECT,)
    assert Condition.EV_SLOT_BLOCKED not in site.conditions()  # this car did plug in


def test_conditions_clear_when_the_sensor_goes_offline() -> None:
    site = Site()
    site.at(0, occupied(S_A1, False))
    site.at(10, connector(ConnectorStatus.CHARGING))
    site.at(400)
    outputs = site.at(410, SensorAvailability(S_A1, online=False))
    assert ConditionCleared(A1, Condition.SENSOR_SUSPECT, t(10), t(410)) in outputs


# ------------------------------------------------------------------ restore, sensorless


def test_visit_restored_after_a_restart_ends_with_its_id() -> None:
    visit = Visit(VisitId("v-persisted"), A1, t(-3600), session_id=SessionId("s-9"))
    site = Site(open_visits=[visit])
    assert site.at(0, occupied(S_A1)) == [
        SlotStateChanged(A1, SlotState.OCCUPIED, SlotState.UNKNOWN, t(0))
    ]
    site.at(10, occupied(S_A1, False))
    ended = of(VisitEnded, site.at(15))
    assert [(v.visit_id, v.arrived_at, v.session_id) for v in ended] == [
        ("v-persisted", t(-3600), "s-9")
    ]


def test_ev_slot_without_sensor_follows_its_connector() -> None:
    site = Site()
    assert site.state(C1) == SlotState.UNKNOWN
    site.at(0, connector(ConnectorStatus.AVAILABLE, CP2))
    assert site.state(C1) == SlotState.FREE
    outputs = site.at(10, connector(ConnectorStatus.OCCUPIED, CP2))
    assert of(VisitStarted, outputs)
    assert site.state(C1) == SlotState.OCCUPIED
    assert site.state(D1) == SlotState.UNKNOWN  # nothing tells us about D1


def test_events_for_unknown_sensors_chargers_and_slots_change_nothing() -> None:
    site = Site()
    site.at(0, occupied(S_A1))
    before = site.model.state
    unknown: list[SlotEvent] = [
        occupied(SensorId("nobody")),
        SensorAvailability(SensorId("nobody"), online=False),
        ConnectorReported(ChargerId("CP-9"), EVSE1, ConnectorStatus.CHARGING),
        ConnectorReported(CP1, EvseId(2), ConnectorStatus.CHARGING),
        OutOfServiceSet(SlotId("Z9"), on=True),
    ]
    for event in unknown:
        assert site.at(1, event) == []
    assert site.model.state == before


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        initial_state(LAYOUT, datetime(2025, 1, 1))


def test_summary_counts_states_and_free_slots_by_type() -> None:
    site = Site()
    site.at(0, occupied(S_A1))
    site.at(0, occupied(S_B1, False))
    site.at(0, connector(ConnectorStatus.AVAILABLE, CP2))
    result = site.model.summary()
    assert result.by_state[SlotState.OCCUPIED] == 1
    assert result.by_state[SlotState.FREE] == 2
    assert result.by_state[SlotState.UNKNOWN] == 1
    assert result.by_state[SlotState.RESERVED] == 0
    assert result.free_by_type == {"ev": 1, "standard": 1, "accessible": 0}
    assert result.total_by_type == {"ev": 2, "standard": 1, "accessible": 1}


def test_next_deadline_names_the_debounce_end() -> None:
    site = Site()
    site.at(0, occupied(S_A1, False))
    site.at(0, occupied(S_B1, False))
    site.at(10, occupied(S_A1))
    assert site.model.next_deadline() == t(15)


# ------------------------------------------------------------------ properties

SENSORS = [S_A1, S_B1, SensorId("S-ghost")]
SLOT_IDS = [A1, B1, C1, D1, SlotId("Z9")]

events = st.one_of(
    st.builds(
        SensorReported,
        sensor_id=st.sampled_from(SENSORS),
        occupied=st.booleans(),
        battery=st.none() | st.integers(0, 100),
        rssi=st.none() | st.integers(-120, 0),
        measured_at=st.none() | st.integers(0, 5000).map(t),
    ),
    st.builds(SensorAvailability, sensor_id=st.sampled_from(SENSORS), online=st.booleans()),
    st.builds(
        ConnectorReported,
        charger_id=st.sampled_from([CP1, CP2, ChargerId("CP-9")]),
        evse_id=st.just(EVSE1),
        status=st.sampled_from(list(ConnectorStatus)),
    ),
    st.builds(
        SessionLinked,
        slot_id=st.sampled_from(SLOT_IDS),
        session_id=st.sampled_from([SessionId("s1"), SessionId("s2")]),
    ),
    st.builds(
        SessionEnded,
        slot_id=st.sampled_from(SLOT_IDS),
        session_id=st.sampled_from([SessionId("s1"), SessionId("s2")]),
    ),
    st.builds(
        ReservationSet,
        slot_id=st.sampled_from(SLOT_IDS),
        reservation_id=st.just(ReservationId("r")),
        until=st.none() | st.integers(0, 5000).map(t),
    ),
    st.builds(ReservationCleared, slot_id=st.sampled_from(SLOT_IDS), reservation_id=st.just("r")),
    st.builds(
        OutOfServiceSet, slot_id=st.sampled_from(SLOT_IDS), on=st.booleans(), reason=st.just("x")
    ),
    st.just(Tick(T0)),
)
steps = st.lists(st.tuples(st.sampled_from([0, 0.5, 1, 3, 5, 30, 299, 301, 600, 901]), events))


@dataclass
class Run:
    times: list[datetime] = field(default_factory=list)
    states: list[SiteSlots] = field(default_factory=list)
    outputs: list[list[SlotOutput]] = field(default_factory=list)


def _at(event: SlotEvent, now: datetime) -> SlotEvent:
    return Tick(now) if isinstance(event, Tick) else event


def run(script: list[tuple[float, SlotEvent]]) -> Run:
    state = initial_state(LAYOUT, T0)
    now = T0
    result = Run()
    for gap, raw in script:
        now += timedelta(seconds=gap)
        state, outputs = decide(state, _at(raw, now), now)
        result.times.append(now)
        result.states.append(state)
        result.outputs.append(outputs)
    return result


@settings(max_examples=150, deadline=None)
@given(steps)
def test_replay_gives_the_same_outputs(script: list[tuple[float, SlotEvent]]) -> None:
    assert run(script).outputs == run(script).outputs


@settings(max_examples=200, deadline=None)
@given(steps)
def test_invariants_hold_after_every_event(script: list[tuple[float, SlotEvent]]) -> None:
    result = run(script)
    timing = LAYOUT.timing
    last_state = {spec.slot_id: SlotState.UNKNOWN for spec in LAYOUT.slots}
    open_visit: dict[SlotId, VisitId] = {}
    raised: set[tuple[SlotId, Condition]] = set()
    for now, state, outputs in zip(result.times, result.states, result.outputs, strict=True):
        for out in outputs:
            match out:
                case SlotStateChanged():
                    assert out.previous == last_state[out.slot_id] != out.state
                    assert out.since <= now
                    last_state[out.slot_id] = out.state
                case VisitStarted():
                    assert out.slot_id not in open_visit
                    assert out.arrived_at <= now
                    open_visit[out.slot_id] = out.visit_id
                case VisitEnded():
                    assert open_visit.pop(out.slot_id) == out.visit_id
                    assert out.arrived_at <= out.departed_at <= now
                    assert out.duration == out.departed_at - out.arrived_at
                case VisitSessionLinked():
                    assert open_visit.get(out.slot_id) == out.visit_id
                case ConditionRaised():
                    assert (out.slot_id, out.condition) not in raised
                    assert out.at - out.since >= timing.hold_for(out.condition)
                    assert state.slots[out.slot_id].spec.charger_id is not None
                    raised.add((out.slot_id, out.condition))
                case ConditionCleared():
                    raised.remove((out.slot_id, out.condition))
        for slot_id, rec in state.slots.items():
            view = slot_view(state, slot_id)
            assert view.state == last_state[slot_id]
            assert set(view.conditions) == {c for s, c in raised if s == slot_id}
            if rec.out_of_service:
                assert view.state == SlotState.OUT_OF_SERVICE
            elif rec.spec.sensor_id is not None and not rec.sensor_usable:
                assert view.state == SlotState.UNKNOWN
            elif rec.occupied is not None:
                assert view.state != SlotState.UNKNOWN
            if rec.occupied is not None:
                assert (slot_id in open_visit) == rec.occupied
        counts = summary(slot_views(state))
        assert sum(counts.by_state.values()) == len(LAYOUT.slots)


@settings(max_examples=200, deadline=None)
@given(steps)
def test_every_change_of_a_view_is_named_by_an_output(
    script: list[tuple[float, SlotEvent]],
) -> None:
    """What the shell republishes (the slots the outputs name) covers every view that
    changed, and a bare "view changed" is never said of a view that did not."""
    result = run(script)
    before = initial_state(LAYOUT, T0)
    for state, outputs in zip(result.states, result.outputs, strict=True):
        named = touched_slots(outputs)
        for slot_id in state.slots:
            if slot_view(before, slot_id) != slot_view(state, slot_id):
                assert slot_id in named, (slot_id, outputs)
        for out in outputs:
            if isinstance(out, SlotViewChanged):
                assert slot_view(before, out.slot_id) != slot_view(state, out.slot_id)
        before = state


def test_a_connector_status_alone_republishes_its_slot() -> None:
    model = SlotModel(LAYOUT, T0)
    outputs = model.handle(ConnectorReported(CP1, EVSE1, ConnectorStatus.FAULTED), t(1))
    assert outputs == [SlotViewChanged(A1)]
    assert model.handle(ConnectorReported(CP1, EVSE1, ConnectorStatus.FAULTED), t(2)) == []


@settings(max_examples=150, deadline=None)
@given(steps, st.integers(1, 5000))
def test_nothing_happens_before_the_next_deadline(
    script: list[tuple[float, SlotEvent]], later: int
) -> None:
    result = run(script)
    state = result.states[-1] if script else initial_state(LAYOUT, T0)
    now = result.times[-1] if script else T0
    deadline = next_deadline(state)
    probe = now + timedelta(seconds=later)
    if deadline is not None and probe >= deadline:
        probe = max(now, deadline - timedelta(microseconds=2))
    new_state, outputs = decide(state, Tick(probe), probe)
    assert outputs == []
    assert new_state == state


@settings(max_examples=100, deadline=None)
@given(steps)
def test_events_about_unknown_things_act_like_a_tick(
    script: list[tuple[float, SlotEvent]],
) -> None:
    result = run(script)
    state = result.states[-1] if script else initial_state(LAYOUT, T0)
    now = (result.times or [T0])[-1] + timedelta(seconds=1)
    tick = decide(state, Tick(now), now)
    garbage_events: list[SlotEvent] = [
        SensorReported(SensorId("S-ghost"), True, battery=1),
        ConnectorReported(ChargerId("CP-9"), EVSE1, ConnectorStatus.CHARGING),
        SessionLinked(SlotId("Z9"), SessionId("s")),
    ]
    for garbage in garbage_events:
        assert decide(state, garbage, now) == tick
