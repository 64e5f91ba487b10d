"""Home Assistant's MQTT discovery rules, as a test checks them: the keys each config
document needs, the device classes, units and state classes that go together, and the
value its ``value_template`` makes of what its state topic carries.

Written from Home Assistant's documentation of MQTT discovery and of the sensor and
binary sensor entities (the parts evpark uses), not from its code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import jinja2

# <discovery_prefix>/<component>/[<node_id>/]<object_id>/config
DISCOVERY_TOPIC = re.compile(
    r"^(?P<prefix>.+)/(?P<component>sensor|binary_sensor)/"
    r"(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config$"
)
ENTITY_ID = re.compile(r"^(sensor|binary_sensor)\.[a-z0-9_]+$")
# sensor device class -> the units and state classes Home Assistant accepts with it
SENSOR_CLASSES: dict[str, tuple[set[str], set[str]]] = {
    "power": ({"W", "kW", "MW"}, {"measurement"}),
    "energy": ({"Wh", "kWh", "MWh"}, {"total", "total_increasing"}),
}
BINARY_SENSOR_CLASSES = {"occupancy", "connectivity", "plug", "problem", "running"}
STATE_CLASSES = {"measurement", "total", "total_increasing"}

_templates = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)


def render(template: str, payload: bytes) -> str:
    """What Home Assistant shows for ``payload`` (``value`` is the text, ``value_json`` the
    parsed JSON, as in its MQTT templates)."""
    text = payload.decode()
    try:
        value_json: Any = json.loads(text)
    except ValueError:
        value_json = None
    return _templates.from_string(template).render(value=text, value_json=value_json).strip()


def problems(topic: str, document: Mapping[str, Any], retained: Mapping[str, bytes]) -> list[str]:
    """What is wrong with one config document; ``retained`` is what the broker holds."""
    found: list[str] = []
    match = DISCOVERY_TOPIC.match(topic)
    if match is None:
        return [f"{topic}: not a discovery topic"]
    component = match["component"]
    for key in ("name", "unique_id", "state_topic", "device", "origin", "availability"):
        if key not in document:
            found.append(f"{topic}: no {key}")
    if found:
        return found
    device = document["device"]
    if not isinstance(device.get("identifiers"), list) or not device["identifiers"]:
        found.append(f"{topic}: device without identifiers")
    if not document["origin"].get("name"):
        found.append(f"{topic}: origin without name")
    entity_id = document.get("default_entity_id")
    if entity_id is not None and not (
        ENTITY_ID.match(entity_id) and entity_id.startswith(component + ".")
    ):
        found.append(f"{topic}: default_entity_id {entity_id!r}")
    for availability in document["availability"]:
        where = availability["topic"]
        said = retained.get(where, b"").decode()
        if said not in (availability["payload_available"], availability["payload_not_available"]):
            found.append(f"{topic}: availability topic {where} says {said!r}")
    if document.get("availability_mode", "latest") not in ("all", "any", "latest"):
        found.append(f"{topic}: availability_mode {document['availability_mode']!r}")
    state = retained.get(document["state_topic"])
    if state is None:
        return [*found, f"{topic}: nothing on its state topic {document['state_topic']}"]
    value = render(document.get("value_template", "{{ value }}"), state)
    found += _component_problems(topic, component, document, value)
    attributes = document.get("json_attributes_topic")
    if attributes is not None and not isinstance(
        json.loads(retained.get(attributes, b"null")), dict
    ):
        found.append(f"{topic}: its attributes topic {attributes} holds no JSON object")
    return found


def _component_problems(
    topic: str, component: str, document: Mapping[str, Any], value: str
) -> list[str]:
    device_class = document.get("device_class")
    if component == "binary_sensor":
        if device_class not in BINARY_SENSOR_CLASSES:
            return [f"{topic}: binary_sensor device_class {device_class!r}"]
        on, off = document.get("payload_on", "ON"), document.get("payload_off", "OFF")
        if value not in (on, off, "None"):
            return [f"{topic}: the template makes {value!r} of its state"]
        return []
    if device_class == "enum":
        if "unit_of_measurement" in document or "state_class" in document:
            return [f"{topic}: an enum sensor has neither unit nor state_class"]
        if value not in document.get("options", []):
            return [f"{topic}: {value!r} is not one of its options"]
        return []
    state_class = document.get("state_class")
    if state_class is not None and state_class not in STATE_CLASSES:
        return [f"{topic}: state_class {state_class!r}"]
    if device_class is not None:
        units, state_classes = SENSOR_CLASSES[device_class]
        if document.get("unit_of_measurement") not in units or state_class not in state_classes:
            return [f"{topic}: {device_class} with {document.get('unit_of_measurement')!r} "
                    f"and {state_class!r}"]  # fmt: skip
    if state_class is not None:
        try:
            float(value)
        except ValueError:
            return [f"{topic}: a {state_class} sensor reads {value!r}, not a number"]
    return []
