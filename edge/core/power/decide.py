"""One cycle of the site's load manager: who charges, and at what limit.

``decide(state, now)`` is pure: the adapter feeds it the chargers, their sessions and
meter readings, and what it remembered of each session's turn; it answers one offer per
session and the turns to remember. The offers never add up to more than the site, a
circuit, a charger or a phase can carry, counting chargers that ignore their limits at
the most they may draw.

The cycle:
1. Each session's draw is believed: its fresh meter reading, else the limit it was last
   offered (a charger that stops reporting is assumed to draw its limit).
2. A charger that rejects limits, or draws more than offered once it had ``react_s`` to
   follow, is *uncontrolled* for the rest of its sessions: counted at its measured draw
   or its maximum, whichever is higher, and the others share what is left.
   A charger that is not connected keeps its last limit (or falls to the failsafe), and
   every idle EVSE keeps the failsafe free: a car plugged in draws it before the
   manager hears of it.
3. Sessions are admitted one by one at the minimum (``min_session_w``), in the strategy's
   order, while every limit holds; the others wait their turn (round robin: a queued car
   takes the place of one that has charged for ``rotate_s``).
4. What is left is shared by progressive filling (:mod:`edge.core.power.filling`): equal
   shares (``fair``), by priority tier (``priority``), or by the power each car needs to
   leave full on time (``departure``); a car that draws well below its offer is capped
   near its draw so its share goes to others at once.
5. Offers are rounded down to what the charger can be sent (0.1 A, or 10 W).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Final

from edge.core.power.filling import Limit, fill
from edge.core.power.model import (
    MIN_CURRENT_A,
    PHASES,
    ChargerSpec,
    Decision,
    Offer,
    OfferState,
    Phase,
    PowerState,
    SessionLoad,
    SiteLimits,
    Strategy,
    Turn,
    Usage,
    limit_in_force,
)

# A car drawing this far below its offer (after react_s) is taking what it wants.
CAR_LIMITED_MARGIN_W: Final = 1000.0
CAR_LIMITED_MARGIN_SHARE: Final = 0.2
# A charger drawing more than its offer by this much (after react_s) ignores it.
OVERSHOOT_MARGIN_W: Final = 500.0
OVERSHOOT_MARGIN_SHARE: Final = 0.1


def decide(state: PowerState, now: datetime) -> Decision:
    limits = state.limits
    specs = {c.id: c for c in state.chargers}
    believed = {
        s.session_id: _believed_draw(s, limits, specs.get(s.charger_id), now)
        for s in state.sessions
    }

    turns: dict[str, Turn] = {}
    uncontrolled: set[str] = {c.id for c in state.chargers if not c.controllable}
    ignoring: set[str] = set()  # controllable, but drawing more than offered
    for s in state.sessions:
        turn = state.turns.get(s.session_id, Turn())
        if _overshoots(s, believed[s.session_id], limits, now):
            turn = replace(turn, over_since=turn.over_since or now)
        turns[s.session_id] = _rest(s, turn, specs.get(s.charger_id), limits, now)
        if turn.over_since is not None:
            ignoring.add(s.charger_id)
        if s.charger_id not in specs:
            uncontrolled.add(s.charger_id)

    uncontrolled |= ignoring
    offline = {c.id for c in state.chargers if not c.connected} - uncontrolled
    fixed = _fixed_loads(state, specs, believed, uncontrolled, offline)
    steered = [s for s in state.sessions if s.charger_id not in uncontrolled | offline]
    resting = [s for s in steered if turns[s.session_id].resting_since is not None]
    managed = [s for s in steered if turns[s.session_id].resting_since is None]
    limit_list = _limits(state, specs, managed, fixed)

    floors = {
        s.session_id: min(_floor(specs[s.charger_id], limits), _or_inf(s.cap_w)) for s in managed
    }
    caps = {
        s.session_id: min(
            _cap(s, specs[s.charger_id], limits, floors[s.session_id], now), _or_inf(s.cap_w)
        )
        for s in managed
    }
    order = sorted(
        managed, key=lambda s: _rank(s, specs[s.charger_id], turns[s.session_id], limits, now)
    )

    x = {s.session_id: 0.0 for s in managed}
    admitted: list[SessionLoad] = []
    for s in order:
        x[s.session_id] = floors[s.session_id]
        if all(limit.fits(x) for limit in limit_list):
            admitted.append(s)
        else:
            x[s.session_id] = 0.0

    full: set[str] = set()
    for tier in _tiers(admitted, specs, limits.strategy):
        weights = {s.session_id: _weight(s, limits, floors[s.session_id], now) for s in tier}
        full |= fill(x, [s.session_id for s in tier], caps, weights, limit_list)

    offers = [
        _fixed_offer(s, specs, fixed, s.charger_id in offline)
        for s in state.sessions
        if s.charger_id in uncontrolled | offline
    ]
    admitted_ids = {s.session_id for s in admitted}
    for s in managed:
        spec = specs[s.charger_id]
        sent = _sendable(x[s.session_id], spec)
        turn = turns[s.session_id]
        if s.session_id in admitted_ids and sent > 0:
            turns[s.session_id] = replace(
                turn, charging_since=turn.charging_since or now, queued_since=None
            )
            why = _why_charging(s.session_id, sent, caps, spec, limit_list, full)
            offers.append(
                Offer(s.session_id, s.charger_id, s.evse_id, sent, OfferState.CHARGING, why, sent)
            )
        else:
            turns[s.session_id] = replace(
                turn, charging_since=None, queued_since=turn.queued_since or now
            )
            why = f"queued: not enough power for {floors[s.session_id] / 1000:.1f} kW more"
            offers.append(
                Offer(s.session_id, s.charger_id, s.evse_id, 0.0, OfferState.QUEUED, why, 0.0)
            )

    for s in resting:
        why = f"the car takes nothing: offered power again after {limits.rotate_s / 60:.0f} min"
        offers.append(
            Offer(s.session_id, s.charger_id, s.evse_id, 0.0, OfferState.RESTING, why, 0.0)
        )

    counted = {o.session_id: o.counted_w for o in offers}
    usage = _usage(state, specs, limit_list, counted, fixed)
    alerts = tuple(sorted(c for c in ignoring if specs[c].controllable))
    return Decision(tuple(offers), turns, usage, alerts)


# --- the draw and what each session may get ----------------------------------------------


def _fresh(s: SessionLoad, limits: SiteLimits, now: datetime) -> bool:
    return (
        s.measured_w is not None
        and s.measured_at is not None
        and (now - s.measured_at).total_seconds() <= limits.stale_s
    )


def _believed_draw(
    s: SessionLoad, limits: SiteLimits, spec: ChargerSpec | None, now: datetime
) -> float:
    if _fresh(s, limits, now):
        assert s.measured_w is not None
        return max(0.0, s.measured_w)
    if s.offered_w is not None:
        return s.offered_w
    return spec.max_w if spec is not None else max(0.0, s.measured_w or 0.0)


def _overshoots(s: SessionLoad, draw: float, limits: SiteLimits, now: datetime) -> bool:
    if s.offered_w is None or not _fresh(s, limits, now):
        return False
    if s.offered_at is not None and (now - s.offered_at).total_seconds() < limits.react_s:
        return False  # still given time to follow
    margin = max(OVERSHOOT_MARGIN_W, OVERSHOOT_MARGIN_SHARE * s.offered_w)
    return draw > s.offered_w + margin


def _rest(
    s: SessionLoad, turn: Turn, spec: ChargerSpec | None, limits: SiteLimits, now: datetime
) -> Turn:
    """A car that took nothing of an offer it had time to take (full, or waiting for a
    departure timer of its own) rests: it holds no share for ``rotate_s``, then is
    offered power again in its turn, ranked by how long it rested."""
    if turn.resting_since is not None:
        if (now - turn.resting_since).total_seconds() < limits.rotate_s:
            return turn
        return replace(turn, resting_since=None, charging_since=None,
                       queued_since=turn.resting_since)  # fmt: skip
    if (
        spec is None
        or s.offered_w is None
        or s.offered_w <= 0
        or s.measured_w is None
        or not _fresh(s, limits, now)
        or (s.offered_at is not None and (now - s.offered_at).total_seconds() < limits.react_s)
    ):
        return turn
    if max(0.0, s.measured_w) < spec.power_w(MIN_CURRENT_A) / 2:
        return replace(turn, resting_since=now, charging_since=None, queued_since=None)
    return turn


def _floor(spec: ChargerSpec, limits: SiteLimits) -> float:
    """The least a charging car is offered: the site's minimum, at least what the car
    needs to charge at all (6 A), at most what the charger can give."""
    least = max(limits.min_session_w, spec.power_w(MIN_CURRENT_A))
    return min(least, spec.max_w)


def _cap(
    s: SessionLoad, spec: ChargerSpec, limits: SiteLimits, floor: float, now: datetime
) -> float:
    """The most a session is offered: the charger's maximum, or a little over what its
    car draws when it has had time to take its offer and takes much less (full,
    tapering, or a slow on-board charger)."""
    if (
        s.offered_w is not None
        and s.measured_w is not None
        and _fresh(s, limits, now)
        and (s.offered_at is None or (now - s.offered_at).total_seconds() >= limits.react_s)
    ):
        draw = max(0.0, s.measured_w)
        if draw < s.offered_w - _car_margin(s.offered_w):
            return max(floor, min(spec.max_w, draw + _car_margin(draw)))
    return spec.max_w


def _or_inf(limit: float | None) -> float:
    return math.inf if limit is None else limit


def _car_margin(power_w: float) -> float:
    return max(CAR_LIMITED_MARGIN_W, CAR_LIMITED_MARGIN_SHARE * power_w)


def _needed_w(s: SessionLoad, now: datetime) -> float | None:
    """The power the car needs to leave with the energy it asked for; None if unknown."""
    if s.departure is None or s.energy_needed_wh is None:
        return None
    hours = max((s.departure - now).total_seconds() / 3600, 1 / 60)
    return max(0.0, s.energy_needed_wh) / hours


# --- order and weights -------------------------------------------------------------------


def _rank(
    s: SessionLoad, spec: ChargerSpec, turn: Turn, limits: SiteLimits, now: datetime
) -> tuple[float, ...]:
    """Lower ranks are admitted first."""
    fair = _fair_rank(s, turn, limits, now)
    match limits.strategy:
        case Strategy.PRIORITY:
            return (-spec.priority, *fair)
        case Strategy.DEPARTURE:
            needed = _needed_w(s, now)
            return (fair[0] if fair[0] == 0 else 1, -(needed or 0.0), *fair)
    return fair


def _fair_rank(
    s: SessionLoad, turn: Turn, limits: SiteLimits, now: datetime
) -> tuple[float, float]:
    """Round robin: cars charging for less than ``rotate_s`` keep their turn, then queued
    cars by the longest wait, then cars that charged longer, the longest last."""
    if turn.charging_since is not None:
        charged = (now - turn.charging_since).total_seconds()
        if charged < limits.rotate_s:
            return (0, turn.charging_since.timestamp())
        return (2, -turn.charging_since.timestamp())
    queued_since = turn.queued_since or now
    return (1, queued_since.timestamp())


def _tiers(
    admitted: list[SessionLoad], specs: dict[str, ChargerSpec], strategy: Strategy
) -> list[list[SessionLoad]]:
    if strategy is not Strategy.PRIORITY:
        return [admitted]
    levels = sorted({specs[s.charger_id].priority for s in admitted}, reverse=True)
    return [[s for s in admitted if specs[s.charger_id].priority == p] for p in levels]


def _weight(s: SessionLoad, limits: SiteLimits, floor: float, now: datetime) -> float:
    if limits.strategy is Strategy.DEPARTURE:
        needed = _needed_w(s, now)
        return max(needed if needed is not None else floor, 1.0)
    return 1.0


# --- limits -------------------------------------------------------------------------------


def _fixed_loads(
    state: PowerState,
    specs: dict[str, ChargerSpec],
    believed: dict[str, float],
    uncontrolled: set[str],
    offline: set[str],
) -> dict[str, float]:
    """What the limits count for what the manager cannot steer, by charger: an
    uncontrolled charger at its measured draw or its maximum, an offline one at its last
    limit or the failsafe, and the failsafe for every idle EVSE."""
    failsafe = state.limits.failsafe_w
    drawn: dict[str, float] = {}
    for s in state.sessions:
        if s.charger_id in uncontrolled or s.charger_id in offline:
            drawn[s.charger_id] = drawn.get(s.charger_id, 0.0) + believed[s.session_id]
    fixed: dict[str, float] = {}
    for charger_id, draw in drawn.items():
        spec = specs.get(charger_id)
        worst = spec.max_w if spec is not None and charger_id in uncontrolled else failsafe
        fixed[charger_id] = max(draw, worst)
    for charger_id, count in state.idle_evses.items():
        spec = specs.get(charger_id)
        if spec is None or count <= 0:
            continue
        if charger_id in uncontrolled:  # it ignores its default profile too
            fixed[charger_id] = max(fixed.get(charger_id, 0.0), spec.max_w)
        else:
            fixed[charger_id] = fixed.get(charger_id, 0.0) + count * min(failsafe, spec.max_w)
    return fixed


def site_limit_w(state: PowerState) -> float:
    return limit_in_force(state.limits.site_w, state.site_limit_override_w)


def _limits(
    state: PowerState,
    specs: dict[str, ChargerSpec],
    managed: list[SessionLoad],
    fixed: dict[str, float],
) -> list[Limit]:
    def watts(charger_ids: Iterable[str] | None) -> dict[str, float]:
        wanted = None if charger_ids is None else set(charger_ids)
        return {s.session_id: 1.0 for s in managed if wanted is None or s.charger_id in wanted}

    def fixed_in(charger_ids: Iterable[str] | None) -> float:
        wanted = None if charger_ids is None else set(charger_ids)
        return sum(w for c, w in fixed.items() if wanted is None or c in wanted)

    site = site_limit_w(state) - state.other_load_w
    found = [Limit("site", watts(None), site - fixed_in(None))]
    for circuit in state.limits.circuits:
        found.append(
            Limit(
                f"circuit {circuit.id}",
                watts(circuit.chargers),
                circuit.limit_w - fixed_in(circuit.chargers),
            )
        )
    for spec in state.chargers:
        mine = watts([spec.id])
        if len(mine) > 1:  # one session is capped by the charger's maximum already
            found.append(Limit(f"charger {spec.id}", mine, spec.max_w))
    phase_a = state.limits.phase_a
    if phase_a is not None:
        for phase in PHASES:
            coefficients = {
                s.session_id: specs[s.charger_id].phase_share(phase)
                for s in managed
                if specs[s.charger_id].phase_share(phase) > 0
            }
            fixed_a = sum(w * specs[c].phase_share(phase) for c, w in fixed.items() if c in specs)
            found.append(Limit(f"phase {phase}", coefficients, phase_a - fixed_a))
    return found


def _sendable(power_w: float, spec: ChargerSpec) -> float:
    """Rounded down to what a profile can carry: 0.1 A per phase, or 10 W."""
    if power_w <= 0:
        return 0.0
    if spec.unit == "A":
        amps = math.floor(spec.current_a(power_w) * 10 + 1e-9) / 10
        return spec.power_w(amps) if amps >= MIN_CURRENT_A else 0.0
    return math.floor(power_w / 10 + 1e-9) * 10


# --- explanations and totals ---------------------------------------------------------------


def _why_charging(
    session_id: str,
    sent: float,
    caps: dict[str, float],
    spec: ChargerSpec,
    limits: list[Limit],
    full: set[str],
) -> str:
    if caps[session_id] < spec.max_w and sent >= caps[session_id] - 100:
        return f"the car takes about {caps[session_id] / 1000:.1f} kW"
    if sent >= spec.max_w - 100:
        return f"the charger's maximum ({spec.max_w / 1000:.1f} kW)"
    shared = [
        limit.name for limit in limits if limit.name in full and session_id in limit.coefficients
    ]
    return f"a share of the {shared[0]} limit" if shared else "its share"


def _fixed_offer(
    s: SessionLoad, specs: dict[str, ChargerSpec], fixed: dict[str, float], offline: bool
) -> Offer:
    counted = fixed.get(s.charger_id, 0.0)
    spec = specs.get(s.charger_id)
    if offline:
        reason = f"the charger is not connected: counted at {counted / 1000:.1f} kW"
        held = s.offered_w if s.offered_w is not None else counted
        return Offer(
            s.session_id, s.charger_id, s.evse_id, held, OfferState.OFFLINE, reason, counted
        )
    reason = (
        "the charger rejects or ignores limits: counted at "
        f"{counted / 1000:.1f} kW (its measured draw or its maximum)"
    )
    offered = spec.max_w if spec is not None else counted
    return Offer(
        s.session_id, s.charger_id, s.evse_id, offered, OfferState.UNCONTROLLED, reason, counted
    )


def _usage(
    state: PowerState,
    specs: dict[str, ChargerSpec],
    limits: list[Limit],
    counted: dict[str, float],
    fixed: dict[str, float],
) -> tuple[Usage, ...]:
    """Each limit with what the offers (and uncontrolled chargers) take of it."""
    circuits = {f"circuit {c.id}": c for c in state.limits.circuits}
    phases: dict[str, Phase] = {f"phase {p}": p for p in PHASES}
    found: list[Usage] = []
    for limit in limits:
        if limit.name.startswith("charger "):
            continue
        used = limit.used(counted)
        if limit.name == "site":
            found.append(
                Usage(
                    "site",
                    site_limit_w(state) - state.other_load_w,
                    used + sum(fixed.values()),
                    "W",
                )
            )
        elif limit.name in circuits:
            circuit = circuits[limit.name]
            extra = sum(w for c, w in fixed.items() if c in circuit.chargers)
            found.append(Usage(limit.name, circuit.limit_w, used + extra, "W"))
        else:
            phase = phases[limit.name]
            extra_a = sum(w * specs[c].phase_share(phase) for c, w in fixed.items() if c in specs)
            assert state.limits.phase_a is not None
            found.append(Usage(limit.name, state.limits.phase_a, used + extra_a, "A"))
    return tuple(found)
