"""Chargers and sessions as JSON documents: what the local API answers and the UI shows.

Plain functions of the site model (no I/O), so that the API (edge.api) and the UI
(edge.ui) show one shape; the slots' documents are edge.core.slots.documents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from common.timestamps import format_timestamp
from edge.core.firmware import FirmwareUpdate
from edge.core.ids import ChargerId, charger_key
from edge.core.model import PLUGGED_IN, Charger, ConnectorStatus, Session

NEVER_CONNECTED = "never_connected"


def _iso(moment: datetime | None) -> str | None:
    return format_timestamp(moment) if moment else None


def session_document(session: Session) -> dict[str, Any]:
    return {
        "id": session.id,
        "charger_id": session.charger_id,
        "evse_id": session.evse_id,
        "connector_id": session.connector_id,
        "transaction_id": session.transaction_id,
        "id_tag": session.id_tag,
        "id_tag_status": session.id_tag_status.value,
        "version": session.version,
        "status": session.status.value,
        "started_at": _iso(session.started_at),
        "stopped_at": _iso(session.stopped_at),
        "energy_wh": round(session.energy_wh, 3),
        "meter_start_wh": session.meter_start_wh,
        "meter_last_wh": session.meter_stop_wh or session.meter_last_wh,
        "power_w": session.power_w,
        "soc": session.soc,
        "stop_reason": session.stop_reason,
        "orphan": session.orphan,
        "last_update": _iso(session.last_update),
    }


def firmware_document(update: FirmwareUpdate | None) -> dict[str, Any] | None:
    """A charger's current firmware update (None: the site never asked it for one)."""
    if update is None:
        return None
    return {
        "request_id": update.request_id,
        "state": update.state.value,
        "status": update.status,
        "location": update.location,
        "signed": update.signed,
        "answer": update.answer,
        "from_version": update.from_version,
        "to_version": update.to_version,
        "retrieve_at": _iso(update.retrieve_at),
        "requested_at": _iso(update.requested_at),
        "updated_at": _iso(update.updated_at),
    }


def charger_state(charger: Charger) -> str:
    """One word for a charger: offline, faulted, charging, occupied, unavailable, available
    or connected (no connector reported yet)."""
    if not charger.connected:
        return "offline"
    statuses = {e.status for e in charger.evses.values() if e.evse_id > 0}
    if ConnectorStatus.FAULTED in statuses:
        return "faulted"
    if ConnectorStatus.CHARGING in statuses:
        return "charging"
    if statuses & PLUGGED_IN:
        return "occupied"
    if statuses and statuses <= {ConnectorStatus.UNAVAILABLE}:
        return "unavailable"
    return "available" if statuses else "connected"


def charger_document(charger: Charger, active: list[Session]) -> dict[str, Any]:
    return {
        "id": charger.id,
        "state": charger_state(charger),
        "version": charger.version,
        "connected": charger.connected,
        "vendor": charger.info.vendor,
        "model": charger.info.model,
        "serial": charger.info.serial,
        "firmware": charger.info.firmware,
        "auto_registered": charger.auto_registered,
        "first_seen": _iso(charger.first_seen),
        "last_seen": _iso(charger.last_seen),
        "last_boot": _iso(charger.last_boot),
        "evses": [
            {
                "evse_id": e.evse_id,
                "connector_id": e.connector_id,
                "status": e.status.value,
                "error_code": e.error_code,
                "info": e.info,
                "updated_at": _iso(e.updated_at),
            }
            for e in sorted(charger.evses.values(), key=lambda e: e.evse_id)
        ],
        "active_sessions": [session_document(s) for s in active],
        "firmware_update": firmware_document(charger.firmware_update),
    }


def never_connected_document(charger_id: str) -> dict[str, Any]:
    """A charger of the site's configuration that has never connected, in the same shape."""
    return {
        "id": charger_id,
        "state": NEVER_CONNECTED,
        "version": None,
        "connected": False,
        "vendor": "",
        "model": "",
        "serial": "",
        "firmware": "",
        "auto_registered": False,
        "first_seen": None,
        "last_seen": None,
        "last_boot": None,
        "evses": [],
        "active_sessions": [],
        "firmware_update": None,
    }


def charger_documents(
    known: Iterable[Charger],
    configured_ids: Iterable[str],
    active_of: Callable[[ChargerId], list[Session]],
) -> list[dict[str, Any]]:
    """Every charger of the site by id: those that ever connected, and the configured ones
    that never did (an installer looks for exactly those)."""
    documents = {charger_key(c.id): charger_document(c, active_of(c.id)) for c in known}
    for charger_id in configured_ids:
        documents.setdefault(charger_key(charger_id), never_connected_document(charger_id))
    return sorted(documents.values(), key=lambda document: str(document["id"]))
