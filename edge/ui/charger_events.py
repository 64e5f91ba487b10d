"""What a charger event says, in a technician's words, for the charger page's history.

Connector faults come from 1.6 StatusNotification (``errorCode``, ``info``,
``vendorErrorCode``, kept by the site as ``connector_fault`` events) and from 2.0.1
NotifyEvent (a component's ``Problem`` variable with ``techCode``/``techInfo``, kept as
``notify_event``); other events are shown as their data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FAULT_KINDS = frozenset({"connector_fault", "connector_fault_cleared", "notify_event"})


def _connector(evse: object, connector: object) -> str:
    return f"connector {evse}" + (f".{connector}" if connector not in (None, 1, evse) else "")


def _fault(data: Mapping[str, Any], cleared: bool) -> str:
    where = _connector(data.get("evse_id"), data.get("connector_id"))
    if cleared:
        return f"{where}: fault cleared, now {data.get('status')}"
    words = [f"{where}: {data.get('error_code') or data.get('status')}"]
    if data.get("info"):
        words.append(f"({data['info']})")
    if data.get("vendor_error_code"):
        words.append(f"vendor code {data['vendor_error_code']}")
    return " ".join(words)


def _notify_event(data: Mapping[str, Any]) -> str | None:
    lines = []
    for event in data.get("eventData") or []:
        component = event.get("component") or {}
        evse = component.get("evse") or {}
        variable = (event.get("variable") or {}).get("name", "?")
        where = component.get("name", "?")
        if evse.get("id") is not None:
            where = f"{where} {evse['id']}" + (
                f".{evse['connectorId']}" if evse.get("connectorId") not in (None, 1) else ""
            )
        text = f"{where} {variable} = {event.get('actualValue')}"
        details = [str(event[k]) for k in ("techCode", "techInfo") if event.get(k)]
        if details:
            text += f" ({', '.join(details)})"
        if event.get("cleared"):
            text += ", cleared"
        lines.append(text)
    return "; ".join(lines) or None


def describe(kind: str, data: Mapping[str, Any]) -> str | None:
    """A line for a fault event; None for the others (the page shows their data)."""
    if kind == "connector_fault":
        return _fault(data, cleared=False)
    if kind == "connector_fault_cleared":
        return _fault(data, cleared=True)
    if kind == "notify_event":
        return _notify_event(data)
    return None
