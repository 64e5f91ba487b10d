"""The edge's own topics on the site's broker: slot states, the summary, the edge's status,
the chargers' states.

The sensors' topics are part of their payload contract (:mod:`edge.sensors.payloads`);
these are the ones the edge publishes, retained (and listens to, for the slots and the
summary, in order to defend them). They live in the core because Home Assistant's discovery
documents (:mod:`edge.core.homeassistant`) name them too.
"""

from __future__ import annotations


def slot_state_topic(site_id: str, slot_id: str) -> str:
    return f"evpark/{site_id}/slots/{slot_id}/state"


def summary_topic(site_id: str) -> str:
    return f"evpark/{site_id}/summary"


def edge_status_topic(site_id: str) -> str:
    return f"evpark/{site_id}/edge/status"


def slot_state_topic_filter(site_id: str) -> str:
    return slot_state_topic(site_id, "+")


def is_slot_state_topic(topic: str, site_id: str) -> bool:
    prefix = f"evpark/{site_id}/slots/"
    return topic.startswith(prefix) and topic.endswith("/state") and topic.count("/") == 4


def charger_topic_level(charger_id: str) -> str:
    """A charger id as one topic level. The OCPP identity rules (edge.core.ids) allow ``+``,
    a wildcard in MQTT that no published topic may hold; it is written ``%2B``. ``%`` is
    not allowed in an id, so the mapping is one to one (``#`` and ``/`` are not allowed)."""
    return charger_id.replace("+", "%2B")


def charger_status_topic(site_id: str, charger_id: str) -> str:
    """``online`` / ``offline``: whether the charger holds its OCPP connection."""
    return f"evpark/{site_id}/chargers/{charger_topic_level(charger_id)}/status"


def evse_state_topic(site_id: str, charger_id: str, evse_id: int) -> str:
    """One EVSE's (1.6: connector's) status, power and session energy."""
    return f"evpark/{site_id}/chargers/{charger_topic_level(charger_id)}/evses/{evse_id}/state"
