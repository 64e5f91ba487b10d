"""A slot and the site summary as JSON documents, the same wherever they are shown.

The retained MQTT states (:mod:`edge.sensors.mqtt`), the local API and the web UI all show
these documents, so they are built here, in the core, once, from the model's views.
"""

from __future__ import annotations

from datetime import UTC, datetime

from edge.core.slots.model import SiteSummary, SlotView


def document_time(moment: datetime) -> str:
    """Times in these documents keep microseconds, as published on the site's topics since
    the first release (docs/mqtt.md); what evpark stores and sends central has milliseconds."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def slot_document(site_id: str, view: SlotView) -> dict[str, object]:
    """One slot as JSON: the retained MQTT state and the local API's answer alike."""
    document: dict[str, object] = {
        "site_id": site_id,
        "slot_id": view.slot_id,
        "type": view.slot_type,
        "state": view.state.value,
        "since": document_time(view.since),
        "conditions": [c.value for c in view.conditions],
    }
    if view.charger_id is not None:
        document["charger"] = view.charger_id
        document["evse"] = view.evse_id
        document["connector"] = view.connector_id
        document["connector_status"] = view.connector_status
    if view.sensor_id is not None:
        document["sensor"] = {
            "id": view.sensor_id,
            "status": view.sensor_status,
            "battery": view.battery,
            "low_battery": view.low_battery,
        }
    if view.reservation_id is not None:
        document["reservation_id"] = view.reservation_id
    if view.visit_id is not None:
        document["visit_id"] = view.visit_id
    if view.out_of_service_reason:
        document["out_of_service_reason"] = view.out_of_service_reason
    return document


def summary_document(site_id: str, summary: SiteSummary, at: datetime) -> dict[str, object]:
    """The site's free counts by slot type: the retained MQTT summary and the API's."""
    return {
        "site_id": site_id,
        "free": dict(summary.free_by_type),
        "total": dict(summary.total_by_type),
        "states": {state.value: count for state, count in summary.by_state.items()},
        "sensors_offline": summary.sensors_offline,
        "sensors_low_battery": summary.sensors_low_battery,
        "updated_at": document_time(at),
    }
