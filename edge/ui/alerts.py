"""What a technician should look at now: derived from slot views and chargers, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from edge.core.model import Charger, ConnectorStatus
from edge.core.slots.model import SlotView
from edge.core.slots.values import Condition

Severity = Literal["critical", "warning", "info"]
_ORDER: dict[Severity, int] = {"critical": 0, "warning": 1, "info": 2}

_CONDITIONS: dict[Condition, tuple[Severity, str]] = {
    Condition.EV_SLOT_BLOCKED: ("warning", "EV slot blocked by a car that is not charging"),
    Condition.CHARGED_IDLE: ("info", "car charged but still plugged in"),
    Condition.SENSOR_SUSPECT: ("warning", "sensor contradicts the charger"),
}
_SENSOR: dict[str, tuple[Severity, str]] = {
    "offline": ("warning", "sensor offline"),
    "stale": ("warning", "sensor silent for too long"),
    "never_heard": ("info", "sensor never heard since start-up"),
}


@dataclass(frozen=True, slots=True)
class Alert:
    severity: Severity
    kind: str
    subject: str  # slot or charger id
    message: str
    href: str
    since: datetime | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "kind": self.kind,
            "subject": self.subject,
            "message": self.message,
            "href": self.href,
            "since": self.since.isoformat() if self.since else None,
        }


def site_alerts(
    slots: Iterable[SlotView], chargers: Iterable[Charger], configured: Iterable[str] = ()
) -> list[Alert]:
    """Alerts, most severe first: slot conditions, sensors, chargers and their EVSEs."""
    found: list[Alert] = []
    for view in slots:
        href = f"/sensors#slot-{view.slot_id}"
        for condition in view.conditions:
            severity, text = _CONDITIONS[condition]
            found.append(Alert(severity, condition.value, view.slot_id, text, "/#slots"))
        if view.sensor_status in _SENSOR:
            severity, text = _SENSOR[view.sensor_status]
            found.append(Alert(severity, f"sensor_{view.sensor_status}", view.slot_id, text, href))
        if view.low_battery:
            text = f"sensor battery low ({view.battery} %)"
            found.append(Alert("info", "low_battery", view.slot_id, text, href))
    seen: set[str] = set()
    for charger in chargers:
        seen.add(charger.id)
        href = f"/chargers/{charger.id}"
        if not charger.connected:
            found.append(
                Alert("warning", "charger_offline", charger.id, "charger offline", href,
                      charger.last_seen)
            )  # fmt: skip
            continue
        for evse in sorted(charger.evses.values(), key=lambda e: e.evse_id):
            if evse.status is ConnectorStatus.FAULTED:
                code = f" ({evse.error_code})" if evse.error_code else ""
                text = f"connector {evse.evse_id} faulted{code}"
                found.append(Alert("critical", "evse_faulted", charger.id, text, href,
                                   evse.updated_at))  # fmt: skip
    for charger_id in configured:
        if charger_id not in seen:
            found.append(
                Alert("warning", "charger_never_connected", charger_id, "charger never connected",
                      "/chargers")
            )  # fmt: skip
    found.sort(key=lambda a: (_ORDER[a.severity], a.subject, a.kind))
    return found
