"""The load manager as the API and the UI show it: limits, and per charger what it is
offered, what it draws, and why."""

from __future__ import annotations

from typing import Any

from common.timestamps import format_timestamp
from edge.power.manager import LoadManager


def _kw(watts: float | None) -> float | None:
    return None if watts is None else round(watts / 1000, 2)


def power_document(manager: LoadManager) -> dict[str, Any]:
    power = manager.power
    if not manager.enabled:
        return {"enabled": False, "why": "power.site_limit_kw is not set: no load management"}
    decision = manager.decision
    offers = {} if decision is None else {o.session_id: o for o in decision.offers}
    chargers = []
    for charger in sorted(manager.site.chargers.values(), key=lambda c: c.id):
        spec = manager.spec(charger)
        sessions = []
        for session in manager.site.active.of_charger(charger.id):
            offer = offers.get(session.id)
            sessions.append(
                {
                    "session_id": session.id,
                    "evse_id": session.evse_id,
                    "state": None if offer is None else offer.state.value,
                    "offered_kw": None if offer is None else _kw(offer.limit_w),
                    "measured_kw": _kw(session.power_w),
                    "why": None if offer is None else offer.reason,
                }
            )
        chargers.append(
            {
                "id": charger.id,
                "connected": charger.connected,
                "max_kw": _kw(spec.max_w),
                "phases": spec.phases,
                "priority": spec.priority,
                "alert": manager.uncontrolled.get(charger.id),
                "sessions": sessions,
            }
        )
    usage = [] if decision is None else decision.usage
    return {
        "enabled": True,
        "strategy": power.strategy,
        "site_limit_kw": _kw(manager.site_limit_w()),
        "configured_limit_kw": power.site_limit_kw,
        "override": None if manager.override is None else manager.override.document(),
        "other_load_kw": _kw(manager.other_load_w),
        "grid_meter": {
            "mode": power.grid_meter,
            "last_kw": None if manager.grid is None else _kw(manager.grid[0]),
            "at": None if manager.grid is None else format_timestamp(manager.grid[1]),
        },
        "failsafe_kw": power.failsafe_kw,
        "decided_at": None if manager.decided_at is None else format_timestamp(manager.decided_at),
        "limits": [
            {
                "name": u.name,
                "unit": "kW" if u.unit == "W" else "A",
                "limit": _kw(u.limit) if u.unit == "W" else round(u.limit, 1),
                "used": _kw(u.used) if u.unit == "W" else round(u.used, 1),
            }
            for u in usage
        ],
        "chargers": chargers,
    }
