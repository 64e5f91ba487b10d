"""The load manager's decision, pure: the offers never add up to more than any limit,
every charging car gets at least the minimum or waits its turn, nobody waits forever,
and the strategies share what is left as they say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.core.power.changes import changes
from edge.core.power.decide import decide
from edge.core.power.model import (
    MIN_CURRENT_A,
    PHASE_VOLTAGE,
    ChargerSpec,
    Circuit,
    Decision,
    OfferState,
    PowerState,
    SessionLoad,
    SiteLimits,
    Strategy,
    Turn,
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ROUNDING_W = 0.1 * PHASE_VOLTAGE * 3  # one step of 0.1 A on three phases


def site(site_kw: float, *, min_kw: float = 4.2, **more: object) -> SiteLimits:
    return SiteLimits(site_w=site_kw * 1000, min_session_w=min_kw * 1000, failsafe_w=3700, **more)  # type: ignore[arg-type]


def charger(cid: str, max_kw: float = 22, **more: object) -> ChargerSpec:
    return ChargerSpec(cid, max_kw * 1000, **more)  # type: ignore[arg-type]


def car(cid: str, evse: int = 1, **more: object) -> SessionLoad:
    return SessionLoad(f"s-{cid}-{evse}", cid, evse, NOW - timedelta(hours=1), **more)  # type: ignore[arg-type]


def offered(decision: Decision) -> dict[str, float]:
    return {o.session_id: o.limit_w for o in decision.offers}


def test_a_site_with_room_gives_every_car_its_chargers_maximum() -> None:
    state = PowerState(site(100), (charger("A"), charger("B", 11)), (car("A"), car("B")))
    decision = decide(state, NOW)
    # 31.8 A and 15.9 A on three phases: the most a profile in 0.1 A steps can give
    assert offered(decision) == pytest.approx({"s-A-1": 31.8 * 690, "s-B-1": 15.9 * 690})
    assert {o.state for o in decision.offers} == {OfferState.CHARGING}
    assert "maximum" in decision.offers[0].reason


def test_fair_shares_are_equal_and_add_up_to_the_site_limit_at_most() -> None:
    chargers = tuple(charger(f"CP-{i}") for i in range(4))
    state = PowerState(site(44), chargers, tuple(car(c.id) for c in chargers))
    decision = decide(state, NOW)
    limits = set(offered(decision).values())
    assert len(limits) == 1
    share = limits.pop()
    assert 11_000 - ROUNDING_W <= share <= 11_000
    assert sum(offered(decision).values()) <= 44_000
    assert all("site" in o.reason for o in decision.offers)


def test_cars_beyond_what_the_minimum_allows_wait_and_take_turns() -> None:
    chargers = tuple(charger(f"CP-{i}") for i in range(5))
    limits = site(10, min_kw=4.2, rotate_s=600)
    sessions = tuple(car(c.id) for c in chargers)
    turns: dict[str, Turn] = {}
    charged: set[str] = set()
    now = NOW
    for _ in range(12):  # two hours in ten-minute cycles
        decision = decide(PowerState(limits, chargers, sessions, turns), now)
        charging = [o for o in decision.offers if o.state is OfferState.CHARGING]
        assert len(charging) == 2  # 2 x 4.2 kW fit in 10 kW, a third does not
        assert all(o.limit_w >= 4_200 - ROUNDING_W for o in charging)
        assert all(o.limit_w == 0 for o in decision.offers if o.state is OfferState.QUEUED)
        charged |= {o.session_id for o in charging}
        turns = decision.turns
        now += timedelta(minutes=10)
    assert charged == {s.session_id for s in sessions}  # nobody starves


def test_a_full_car_gives_its_share_to_the_others_within_one_cycle() -> None:
    chargers = (charger("A"), charger("B"))
    before = decide(PowerState(site(22), chargers, (car("A"), car("B"))), NOW)
    share = offered(before)["s-A-1"]
    assert share == offered(before)["s-B-1"]
    given_at = NOW - timedelta(minutes=5)
    full = car("A", measured_w=300, measured_at=NOW, offered_w=share, offered_at=given_at)
    after = decide(PowerState(site(22), chargers, (full, car("B"))), NOW)
    assert offered(after)["s-A-1"] < share / 2
    assert offered(after)["s-B-1"] > share
    assert "car takes" in after.offer("s-A-1").reason  # type: ignore[union-attr]


def test_a_charger_that_ignores_its_limit_is_counted_at_its_worst_and_the_others_lowered() -> None:
    chargers = (charger("A"), charger("B"), charger("C"))
    ignoring = car(
        "A",
        measured_w=16_000,
        measured_at=NOW,
        offered_w=8_000,
        offered_at=NOW - timedelta(minutes=2),
    )
    decision = decide(PowerState(site(30), chargers, (ignoring, car("B"), car("C"))), NOW)
    assert decision.alerts == ("A",)
    a = decision.offer("s-A-1")
    assert a is not None
    assert a.state is OfferState.UNCONTROLLED
    assert a.counted_w == 22_000
    others = offered(decision)["s-B-1"] + offered(decision)["s-C-1"]
    assert others <= 30_000 - 22_000
    # and it stays so for the rest of the session, even once it draws less
    calm = car("A", measured_w=1_000, measured_at=NOW, offered_w=8_000, offered_at=NOW)
    later = decide(PowerState(site(30), chargers, (calm, car("B"), car("C")), decision.turns), NOW)
    assert later.offer("s-A-1").state is OfferState.UNCONTROLLED  # type: ignore[union-attr]


def test_a_new_limit_gives_the_charger_time_to_follow_before_it_is_called_uncontrolled() -> None:
    chargers = (charger("A"),)
    following = car("A", measured_w=16_000, measured_at=NOW, offered_w=8_000, offered_at=NOW)
    decision = decide(PowerState(site(30), chargers, (following,)), NOW)
    assert decision.alerts == ()


def test_a_charger_that_stops_reporting_is_assumed_to_draw_its_limit() -> None:
    chargers = (charger("A"), charger("B"))
    silent = car(
        "A",
        measured_w=100,
        measured_at=NOW - timedelta(minutes=30),
        offered_w=11_000,
        offered_at=NOW - timedelta(minutes=30),
    )
    decision = decide(PowerState(site(22), chargers, (silent, car("B"))), NOW)
    # an old, low reading does not make it "full": it keeps its fair share
    assert offered(decision)["s-A-1"] > 10_000


def test_circuits_and_phases_hold_inside_the_site_limit() -> None:
    chargers = (
        charger("A", phases=1, phase="L1", max_kw=7.4),
        charger("B", phases=1, phase="L1", max_kw=7.4),
        charger("C"),
    )
    limits = site(
        100,
        phase_a=40,
        circuits=(Circuit("row-A", 11_000, frozenset({"A", "C"})),),
    )
    decision = decide(PowerState(limits, chargers, tuple(car(c.id) for c in chargers)), NOW)
    limits_now = offered(decision)
    assert limits_now["s-A-1"] + limits_now["s-C-1"] <= 11_000
    l1 = (limits_now["s-A-1"] + limits_now["s-B-1"]) / PHASE_VOLTAGE + limits_now["s-C-1"] / (
        3 * PHASE_VOLTAGE
    )
    assert l1 <= 40 + 1e-6
    usage = {u.name: u for u in decision.usage}
    assert usage["circuit row-A"].used <= 11_000
    assert usage["phase L1"].used <= 40 + 1e-6


def test_priority_serves_the_higher_tier_first() -> None:
    chargers = (charger("VIP", priority=10), charger("A"), charger("B"))
    limits = site(30, strategy=Strategy.PRIORITY)
    decision = decide(PowerState(limits, chargers, tuple(car(c.id) for c in chargers)), NOW)
    got = offered(decision)
    # the others keep their minimum; everything else goes to the higher tier
    assert got["s-A-1"] == got["s-B-1"] == pytest.approx(4_200, abs=ROUNDING_W)
    assert got["s-VIP-1"] == pytest.approx(30_000 - 2 * 4_200, abs=ROUNDING_W)
    assert sum(got.values()) <= 30_000


def test_departure_gives_more_to_who_leaves_sooner_with_more_to_take() -> None:
    chargers = (charger("SOON"), charger("LATE"))
    soon = car("SOON", departure=NOW + timedelta(hours=1), energy_needed_wh=15_000)
    late = car("LATE", departure=NOW + timedelta(hours=8), energy_needed_wh=15_000)
    limits = site(22, strategy=Strategy.DEPARTURE)
    got = offered(decide(PowerState(limits, chargers, (soon, late)), NOW))
    assert got["s-SOON-1"] > 2 * got["s-LATE-1"]
    assert got["s-LATE-1"] >= 4_200 - ROUNDING_W
    assert sum(got.values()) <= 22_000


def test_a_technicians_limit_may_lower_the_site_limit_never_raise_it() -> None:
    chargers = (charger("A"), charger("B"))
    sessions = (car("A"), car("B"))
    lowered = decide(PowerState(site(44), chargers, sessions, site_limit_override_w=11_000), NOW)
    assert sum(offered(lowered).values()) <= 11_000
    raised = decide(PowerState(site(11), chargers, sessions, site_limit_override_w=99_000), NOW)
    assert sum(offered(raised).values()) <= 11_000


def test_the_buildings_own_load_is_taken_off_the_site_limit() -> None:
    decision = decide(PowerState(site(22), (charger("A"),), (car("A"),), other_load_w=15_000), NOW)
    assert offered(decision)["s-A-1"] <= 7_000


def test_an_offline_charger_keeps_its_last_limit_and_idle_evses_keep_the_failsafe_free() -> None:
    chargers = (charger("GONE", connected=False), charger("A"), charger("IDLE"))
    gone = car("GONE", offered_w=10_000, offered_at=NOW - timedelta(minutes=1))
    limits = SiteLimits(site_w=30_000, min_session_w=4_200, failsafe_w=3_700)
    state = PowerState(limits, chargers, (gone, car("A")), idle_evses={"IDLE": 2})
    decision = decide(state, NOW)
    offline = decision.offer("s-GONE-1")
    assert offline is not None
    assert offline.state is OfferState.OFFLINE
    assert offline.counted_w == 10_000
    # 30 kW less 10 kW held by the offline charger and 2 x 3.7 kW kept for idle EVSEs
    assert offered(decision)["s-A-1"] <= 30_000 - 10_000 - 2 * 3_700
    assert offered(decision)["s-A-1"] >= 30_000 - 10_000 - 2 * 3_700 - ROUNDING_W


# --- the safety property, for any site --------------------------------------------------

chargers_st = st.lists(
    st.builds(
        lambda i, max_kw, phases, phase, prio, unit, ctl, on: ChargerSpec(
            f"CP-{i}", max_kw * 1000, phases, phase if phases == 1 else None, prio, unit, ctl, on
        ),
        st.integers(0, 10**6),
        st.floats(1.4, 50),
        st.sampled_from([1, 3]),
        st.sampled_from([None, "L1", "L2", "L3"]),
        st.integers(0, 3),
        st.sampled_from(["A", "W"]),
        st.booleans(),
        st.booleans(),
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda c: c.id,
)


@st.composite
def power_states(draw: st.DrawFn) -> PowerState:
    chargers = draw(chargers_st)
    sessions = []
    for spec in chargers:
        for evse in range(1, draw(st.integers(0, 2)) + 1):
            measured = draw(st.none() | st.floats(0, 60_000))
            age = draw(st.floats(0, 600))
            given = draw(st.none() | st.floats(0, 50_000))
            sessions.append(
                SessionLoad(
                    f"s-{spec.id}-{evse}",
                    spec.id,
                    evse,
                    NOW - timedelta(hours=1),
                    measured_w=measured,
                    measured_at=None if measured is None else NOW - timedelta(seconds=age),
                    offered_w=given,
                    offered_at=NOW - timedelta(seconds=draw(st.floats(0, 600))),
                    departure=draw(st.none() | st.just(NOW + timedelta(hours=2))),
                    energy_needed_wh=draw(st.none() | st.floats(0, 80_000)),
                    cap_w=draw(st.none() | st.floats(0, 30_000)),
                )
            )
    ids = [c.id for c in chargers]
    circuits = tuple(
        Circuit(
            f"c{n}", draw(st.floats(0, 60_000)), frozenset(draw(st.lists(st.sampled_from(ids))))
        )
        for n in range(draw(st.integers(0, 3)))
    )
    limits = SiteLimits(
        site_w=draw(st.floats(0, 200_000)),
        min_session_w=draw(st.floats(1_000, 11_000)),
        failsafe_w=draw(st.floats(0, 7_400)),
        strategy=draw(st.sampled_from(list(Strategy))),
        phase_a=draw(st.none() | st.floats(0, 250)),
        circuits=circuits,
    )
    return PowerState(
        limits,
        tuple(chargers),
        tuple(sessions),
        other_load_w=draw(st.floats(0, 20_000)),
        idle_evses={c.id: draw(st.integers(0, 2)) for c in chargers},
        site_limit_override_w=draw(st.none() | st.floats(0, 200_000)),
    )


@settings(max_examples=300, deadline=None)
@given(power_states())
def test_no_limit_is_ever_exceeded_by_the_offers_it_controls(state: PowerState) -> None:
    decision = decide(state, NOW)
    specs = {c.id: c for c in state.chargers}
    steered = (OfferState.CHARGING, OfferState.QUEUED, OfferState.RESTING)
    managed = [o for o in decision.offers if o.state in steered]
    # what the manager cannot steer: a charger that ignores limits or is offline as the
    # decision counts it (checked here to be its worst), and the failsafe a car plugged
    # in at any other idle EVSE draws at once
    fixed = {o.charger_id: o.counted_w for o in decision.offers if o.state not in steered}
    for o in decision.offers:
        spec = specs[o.charger_id]
        if o.state is OfferState.UNCONTROLLED:
            assert o.counted_w >= spec.max_w
        if o.state is OfferState.OFFLINE:
            assert o.counted_w >= min(state.limits.failsafe_w, spec.max_w)
    for spec in state.chargers:
        idle = state.idle_evses.get(spec.id, 0)
        if spec.id not in fixed and idle:
            ignores_profiles = not spec.controllable
            each = spec.max_w if ignores_profiles else min(state.limits.failsafe_w, spec.max_w)
            fixed[spec.id] = spec.max_w if ignores_profiles else idle * each

    def room(bound: float, charger_ids: set[str] | None) -> float:
        taken = sum(w for c, w in fixed.items() if charger_ids is None or c in charger_ids)
        return max(0.0, bound - taken)

    site_w = state.limits.site_w
    if state.site_limit_override_w is not None:
        site_w = min(site_w, state.site_limit_override_w)
    assert sum(o.limit_w for o in managed) <= room(site_w - state.other_load_w, None) + 1e-6
    for circuit in state.limits.circuits:
        inside = [o.limit_w for o in managed if o.charger_id in circuit.chargers]
        assert sum(inside) <= room(circuit.limit_w, set(circuit.chargers)) + 1e-6
    for spec in state.chargers:
        assert sum(o.limit_w for o in managed if o.charger_id == spec.id) <= spec.max_w + 1e-6
    if state.limits.phase_a is not None:
        for phase in ("L1", "L2", "L3"):
            amps = sum(o.limit_w * specs[o.charger_id].phase_share(phase) for o in managed)  # type: ignore[arg-type]
            fixed_a = sum(w * specs[c].phase_share(phase) for c, w in fixed.items())  # type: ignore[arg-type]
            assert amps <= max(0.0, state.limits.phase_a - fixed_a) + 1e-6
    caps = {s.session_id: s.cap_w for s in state.sessions}
    for offer in managed:
        spec = specs[offer.charger_id]
        cap = caps[offer.session_id]
        assert cap is None or offer.limit_w <= cap + 1e-6  # another source's limit holds
        if offer.state is OfferState.CHARGING:  # never less than a car can charge with
            least = min(max(state.limits.min_session_w, spec.power_w(MIN_CURRENT_A)), spec.max_w)
            least = least if cap is None else min(least, cap)
            step = 0.1 * PHASE_VOLTAGE * spec.phases if spec.unit == "A" else 10
            assert offer.limit_w >= least - step - 1e-6
        else:
            assert offer.limit_w == 0


def test_limits_go_down_before_any_goes_up() -> None:
    planned = changes(
        {"a": 11_000, "b": 4_200, "c": None, "d": 7_000},
        {"a": 7_000, "b": 8_000, "c": 5_000, "d": 7_000.5},
    )
    assert planned.lower == {"a": 7_000, "c": 5_000}  # an unknown holding goes with them
    assert planned.raise_ == {"b": 8_000}
    assert not changes({"a": 1_000}, {"a": 1_000})


@settings(max_examples=100, deadline=None)
@given(
    cars=st.integers(2, 12),
    fit=st.integers(1, 11),
    strategy=st.sampled_from(list(Strategy)),
    priorities=st.lists(st.integers(0, 0), min_size=12, max_size=12),
)
def test_nobody_waits_for_ever(
    cars: int, fit: int, strategy: Strategy, priorities: list[int]
) -> None:
    """With room for ``fit`` cars at the minimum, every one of ``cars`` charges within a
    bounded number of turns, whatever the strategy (equal priorities)."""
    fit = min(fit, cars - 1)
    chargers = tuple(charger(f"CP-{i}") for i in range(cars))
    rotate = 600.0
    limits = SiteLimits(
        site_w=fit * 4_200 + 100,
        min_session_w=4_200,
        failsafe_w=0,
        strategy=strategy,
        rotate_s=rotate,
    )
    sessions = tuple(car(c.id) for c in chargers)
    turns: dict[str, Turn] = {}
    charged: set[str] = set()
    now = NOW
    rounds = -(-cars // fit) + 1  # turns of rotate_s each until the last one's comes
    for _ in range(rounds * 2 + 2):  # two cycles per turn
        decision = decide(PowerState(limits, chargers, sessions, turns), now)
        charging = {o.session_id for o in decision.offers if o.state is OfferState.CHARGING}
        assert len(charging) == fit
        charged |= charging
        turns = decision.turns
        now += timedelta(seconds=rotate / 2 + 1)
    assert charged == {s.session_id for s in sessions}


def test_a_full_car_rests_and_gives_its_place_to_a_waiting_one() -> None:
    """Room for two at the minimum; A's car is full (draws nothing of its 4.2 kW for
    minutes): it rests, C charges instead, and A is offered power again in its turn."""
    chargers = (charger("A", 11), charger("B", 11), charger("C", 11))
    limits = site(9, rotate_s=900)
    given = NOW - timedelta(minutes=5)
    full = car("A", measured_w=0, measured_at=NOW, offered_w=4_140, offered_at=given)
    drawing = car("B", measured_w=4_100, measured_at=NOW, offered_w=4_140, offered_at=given)
    turns = {"s-A-1": Turn(charging_since=given), "s-B-1": Turn(charging_since=given)}
    decision = decide(PowerState(limits, chargers, (full, drawing, car("C")), turns), NOW)
    states = {o.session_id: o.state for o in decision.offers}
    assert states == {
        "s-A-1": OfferState.RESTING,
        "s-B-1": OfferState.CHARGING,
        "s-C-1": OfferState.CHARGING,
    }
    assert offered(decision)["s-A-1"] == 0
    later = NOW + timedelta(minutes=16)
    back = car("A", measured_w=0, measured_at=later, offered_w=0, offered_at=NOW)
    again = decide(PowerState(limits, chargers, (back, drawing, car("C")), decision.turns), later)
    assert again.offer("s-A-1").state is not OfferState.RESTING  # type: ignore[union-attr]
