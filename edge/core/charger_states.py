"""A charger's EVSEs as retained MQTT documents, and how often they may go out.

Site systems (Home Assistant, an energy manager, a display) read these from
``evpark/<site>/chargers/<id>/evses/<n>/state`` (docs/mqtt.md). Power and energy change
with every MeterValues, so :class:`Spacing` holds a key to one publication per interval,
lets a change of status or session through at once, and never loses the latest value.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

from edge.core.ids import ChargerId, charger_key
from edge.core.model import Charger, Evse, Session
from edge.core.slots.documents import document_time

Key = TypeVar("Key", bound=Hashable)


def evse_state_document(
    site_id: str, charger_id: str, evse: Evse, session: Session | None
) -> dict[str, object]:
    """The EVSE's status word, and power and energy of the session on it (0 without one)."""
    moments = [m for m in (evse.updated_at, session.last_update if session else None) if m]
    return {
        "site_id": site_id,
        "charger_id": charger_id,
        "evse_id": evse.evse_id,
        "connector_id": evse.connector_id,
        "status": evse.status.value,
        "error_code": evse.error_code,
        "power_w": float(session.power_w or 0.0) if session else 0.0,
        "energy_wh": round(session.energy_wh, 3) if session else 0.0,
        "session_id": session.id if session else None,
        "updated_at": document_time(max(moments)) if moments else None,
    }


def urgent_fields(document: dict[str, object]) -> tuple[object, ...]:
    """What goes out at once when it changes; the rest (power, energy) waits its turn."""
    return (document["status"], document["error_code"], document["session_id"])


class Spacing(Generic[Key]):
    """At most one publication per key every ``every`` seconds, except urgent ones; what
    was held back is due ``every`` seconds after the last one went. Times are monotonic
    seconds (the event loop's clock), passed in."""

    def __init__(self, every: float) -> None:
        self._every = every
        self._sent_at: dict[Key, float] = {}
        self._held: dict[Key, float] = {}  # key -> when its latest value may go

    def offer(self, key: Key, now: float, *, urgent: bool = False) -> bool:
        """True: publish now. False: held back; :meth:`due` names it when its time comes."""
        last = self._sent_at.get(key)
        if urgent or last is None or now - last >= self._every:
            self._sent_at[key] = now
            self._held.pop(key, None)
            return True
        self._held[key] = last + self._every
        return False

    def due(self, now: float) -> list[Key]:
        """The held-back keys whose time has come; they count as published now."""
        ready = [key for key, at in self._held.items() if at <= now]
        for key in ready:
            del self._held[key]
            self._sent_at[key] = now
        return ready

    def next_due(self) -> float | None:
        return min(self._held.values(), default=None)


def evse_ids(charger: Charger | None, configured: Iterable[int] = ()) -> list[int]:
    """A charger's EVSEs (1.6: connectors): those it reported and those the site config's
    slots name, in order; EVSE 0 (the whole charger) is not one."""
    reported = {e for e in charger.evses if e > 0} if charger is not None else set()
    return sorted(reported | set(configured))


def site_charger_ids(configured: Iterable[str], known: Iterable[ChargerId]) -> list[ChargerId]:
    """Every charger of the site once: the site file's and those that ever connected
    (auto-registered ones too); ids differing only in case are one charger, spelt as the
    site knows it."""
    ids = {charger_key(charger_id): ChargerId(charger_id) for charger_id in configured}
    ids.update((charger_key(charger_id), charger_id) for charger_id in known)
    return sorted(ids.values())
