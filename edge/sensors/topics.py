"""The edge's own topics on the site's broker: slot states, the summary, the edge's status.

The sensors' topics are part of their payload contract (:mod:`edge.sensors.payloads`);
these are the ones the edge publishes, retained, and listens to in order to defend them.
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
