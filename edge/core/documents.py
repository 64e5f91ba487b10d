"""Chargers and sessions as JSON documents: what the local API answers and the UI shows.

Plain functions of the site model (no I/O), so that the API (edge.api) and the UI
(edge.ui) show one shape; the slots' documents are edge.core.slots.documents.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common.timestamps import format_timestamp
from edge.core.model import Charger, Session


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


def charger_document(charger: Charger, active: list[Session]) -> dict[str, Any]:
    return {
        "id": charger.id,
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
    }
