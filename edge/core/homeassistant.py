"""Home Assistant's MQTT discovery documents for a site: built here, published by
:mod:`edge.sensors.homeassistant`.

Each entity is one retained config document on ``<prefix>/<component>/<node_id>/<object_id>/config``
that points Home Assistant at a state topic the edge publishes anyway (docs/home-assistant.md):

- per slot a ``binary_sensor`` (occupancy) reading ``evpark/<site>/slots/<slot>/state``,
  the whole slot document as its attributes;
- per slot type a ``sensor`` of free slots, reading ``evpark/<site>/summary``;
- per charger EVSE ``sensor``s of status, power (W) and session energy (Wh), reading
  ``evpark/<site>/chargers/<id>/evses/<n>/state``.

Entities are grouped in one device for the site (the edge) and one per charger, linked to
the site's by ``via_device``. ``unique_id``s are made of the site, slot, charger and EVSE
ids and the kind of value, so they stay the same across restarts.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from edge.core.model import ChargerInfo, ConnectorStatus
from edge.core.topics import (
    charger_status_topic,
    edge_status_topic,
    evse_state_topic,
    slot_state_topic,
    summary_topic,
)

Document = dict[str, object]

# what Home Assistant allows in a discovery topic's node_id and object_id
_TOPIC_LEVEL_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_ENTITY_ID_UNSAFE = re.compile(r"[^a-z0-9_]")


@dataclass(frozen=True)
class DiscoverySite:
    site_id: str
    name: str
    prefix: str  # Home Assistant's discovery prefix, "homeassistant" unless changed there
    sw_version: str


@dataclass(frozen=True)
class DiscoverySlot:
    slot_id: str
    slot_type: str
    label: str = ""


@dataclass(frozen=True)
class DiscoveryCharger:
    charger_id: str
    evse_ids: tuple[int, ...]
    info: ChargerInfo | None = None  # None: it has not booted yet
    description: str = ""


def topic_level(text: str) -> str:
    """``text`` as a discovery node_id or object_id: unsafe characters become ``_``, and
    a checksum of the original keeps two ids that differ only there apart."""
    safe = _TOPIC_LEVEL_UNSAFE.sub("_", text)
    if safe == text:
        return text
    return f"{safe}_{zlib.crc32(text.encode()):08x}"


def node_id(site: DiscoverySite) -> str:
    return topic_level(f"evpark_{site.site_id}")


def discovery_topic_filter(site: DiscoverySite) -> str:
    """Every config document of this site (to find stale ones left by an older config)."""
    return f"{site.prefix}/+/{node_id(site)}/+/config"


def _topic(site: DiscoverySite, component: str, object_id: str) -> str:
    return f"{site.prefix}/{component}/{node_id(site)}/{object_id}/config"


def _site_device_id(site: DiscoverySite) -> str:
    return f"evpark_{site.site_id}"


def site_device(site: DiscoverySite) -> Document:
    return {
        "identifiers": [_site_device_id(site)],
        "name": site.name or site.site_id,
        "manufacturer": "evpark",
        "model": "evpark edge",
        "sw_version": site.sw_version,
    }


def charger_device(site: DiscoverySite, charger: DiscoveryCharger) -> Document:
    """A charger, as its BootNotification described it once it has booted."""
    device: Document = {
        "identifiers": [f"evpark_{site.site_id}_charger_{charger.charger_id}"],
        "name": charger.description or charger.charger_id,
        "via_device": _site_device_id(site),
    }
    info = charger.info
    if info is not None:
        known = {"manufacturer": info.vendor, "model": info.model, "sw_version": info.firmware,
                 "serial_number": info.serial}  # fmt: skip
        device.update({key: value for key, value in known.items() if value})
    return device


def _availability(site: DiscoverySite, charger_id: str | None = None) -> Document:
    topics = [edge_status_topic(site.site_id)]
    if charger_id is not None:
        topics.append(charger_status_topic(site.site_id, charger_id))
    return {
        "availability": [
            {"topic": t, "payload_available": "online", "payload_not_available": "offline"}
            for t in topics
        ],
        "availability_mode": "all",
    }


def _entity(
    site: DiscoverySite, component: str, key: str, name: str, device: Document
) -> tuple[str, Document]:
    """The parts every entity has; ``key`` names it within the site, for good."""
    object_id = topic_level(key)
    entity_id = _ENTITY_ID_UNSAFE.sub("_", f"evpark_{site.site_id}_{key}".lower())
    return _topic(site, component, object_id), {
        "name": name,
        "unique_id": f"evpark_{site.site_id}_{key}",
        # HA 2025.10 replaced object_id with this, and warns about object_id until it
        # stops reading it (2026.4): older versions name the entity after device and name
        "default_entity_id": f"{component}.{entity_id}",
        "device": device,
        "origin": {"name": "evpark", "sw_version": site.sw_version},
    }


# occupied -> ON; free or reserved -> OFF; unknown and out of service -> unknown ("None")
SLOT_OCCUPANCY_TEMPLATE = (
    "{% if value_json.state == 'occupied' %}ON"
    "{% elif value_json.state in ['free', 'reserved'] %}OFF"
    "{% else %}None{% endif %}"
)


def slot_entity(site: DiscoverySite, slot: DiscoverySlot) -> tuple[str, Document]:
    topic, document = _entity(
        site, "binary_sensor", f"slot_{slot.slot_id}",
        f"Slot {slot.label or slot.slot_id}", site_device(site),
    )  # fmt: skip
    state_topic = slot_state_topic(site.site_id, slot.slot_id)
    document.update(
        device_class="occupancy",
        state_topic=state_topic,
        value_template=SLOT_OCCUPANCY_TEMPLATE,
        json_attributes_topic=state_topic,  # state, conditions, reservation, connector, sensor
        **_availability(site),
    )
    return topic, document


def free_slots_entity(site: DiscoverySite, slot_type: str) -> tuple[str, Document]:
    topic, document = _entity(
        site, "sensor", f"free_{slot_type}", f"Free {slot_type} slots", site_device(site)
    )
    document.update(
        state_topic=summary_topic(site.site_id),
        value_template=f"{{{{ value_json.free['{slot_type}'] | default(0) }}}}",
        state_class="measurement",
        icon="mdi:parking",
        **_availability(site),
    )
    return topic, document


def evse_entities(
    site: DiscoverySite, charger: DiscoveryCharger, evse_id: int
) -> dict[str, Document]:
    """Status, power and session energy of one EVSE (1.6: connector)."""
    device = charger_device(site, charger)
    state_topic = evse_state_topic(site.site_id, charger.charger_id, evse_id)
    base = f"charger_{charger.charger_id}_evse_{evse_id}"
    entities: dict[str, Document] = {}
    kinds: list[tuple[str, str, Document]] = [
        ("status", "status", {
            "device_class": "enum",
            "options": [status.value for status in ConnectorStatus],
            "value_template": "{{ value_json.status }}",
            "json_attributes_topic": state_topic,
        }),
        ("power", "power", {
            "device_class": "power", "unit_of_measurement": "W", "state_class": "measurement",
            "value_template": "{{ value_json.power_w }}",
        }),
        # Energy starts again at 0 with every session; total_increasing takes a decrease
        # for a reset of the meter, which is what it is, so HA's statistics add up.
        ("energy", "session energy", {
            "device_class": "energy", "unit_of_measurement": "Wh",
            "state_class": "total_increasing", "value_template": "{{ value_json.energy_wh }}",
        }),
    ]  # fmt: skip
    for kind, what, fields in kinds:
        topic, document = _entity(
            site, "sensor", f"{base}_{kind}", f"EVSE {evse_id} {what}", device
        )
        document.update(
            state_topic=state_topic, **fields, **_availability(site, charger.charger_id)
        )
        entities[topic] = document
    return entities


def site_entities(
    site: DiscoverySite, slots: Sequence[DiscoverySlot], slot_types: Sequence[str]
) -> dict[str, Document]:
    """The site device's entities: every slot's occupancy and the free counts by type."""
    entities = dict(slot_entity(site, slot) for slot in slots)
    entities.update(free_slots_entity(site, slot_type) for slot_type in slot_types)
    return entities


def charger_entities(site: DiscoverySite, charger: DiscoveryCharger) -> dict[str, Document]:
    entities: dict[str, Document] = {}
    for evse_id in charger.evse_ids:
        entities.update(evse_entities(site, charger, evse_id))
    return entities
