"""Home Assistant's discovery documents as built, without a broker: what each slot state
reads as, and the ids and names every start gives again."""

from __future__ import annotations

import json
import re

import pytest

from edge.core.homeassistant import (
    DiscoveryCharger,
    DiscoverySite,
    DiscoverySlot,
    charger_entities,
    site_entities,
)
from edge.core.model import ChargerInfo
from edge.core.slots.values import SlotState
from tests.edge.homeassistant.discovery_schema import render

SITE = DiscoverySite(site_id="demo.site", name="", prefix="ha", sw_version="1.2.3")

OCCUPANCY = {
    SlotState.OCCUPIED: "ON",
    SlotState.FREE: "OFF",
    SlotState.RESERVED: "OFF",
    SlotState.UNKNOWN: "None",  # Home Assistant's "unknown" for a binary sensor
    SlotState.OUT_OF_SERVICE: "None",
}


@pytest.mark.parametrize("state", list(SlotState))
def test_a_slot_reads_as_occupied_only_when_it_is(state: SlotState) -> None:
    (document,) = (
        d
        for d in site_entities(SITE, [DiscoverySlot("A1", "ev")], ["ev"]).values()
        if d["unique_id"] == "evpark_demo.site_slot_A1"
    )
    payload = json.dumps({"slot_id": "A1", "state": state.value}).encode()
    assert render(str(document["value_template"]), payload) == OCCUPANCY[state]


def test_ids_are_stable_and_topics_and_entity_ids_hold_only_what_home_assistant_allows() -> None:
    charger = DiscoveryCharger("CP+1", (1, 2), ChargerInfo(vendor="ACME", model="X"))
    built = {**site_entities(SITE, [DiscoverySlot("A1", "ev")], ["ev"]),
             **charger_entities(SITE, charger)}  # fmt: skip
    again = {**site_entities(SITE, [DiscoverySlot("A1", "ev")], ["ev"]),
             **charger_entities(SITE, charger)}  # fmt: skip
    assert built == again
    assert len({d["unique_id"] for d in built.values()}) == len(built) == 1 + 1 + 2 * 3
    for topic, document in built.items():
        prefix, component, node, object_id, config = topic.split("/")
        assert (prefix, config) == ("ha", "config")
        assert node.startswith("evpark_demo_site_")  # the "." of the site id is not allowed
        assert re.fullmatch(r"[A-Za-z0-9_-]+", node)
        assert re.fullmatch(r"[A-Za-z0-9_-]+", object_id)
        assert str(document["default_entity_id"]).startswith(component + ".")
    power = next(d for d in built.values() if d["unique_id"].endswith("CP+1_evse_2_power"))
    assert power["device"] == {
        "identifiers": ["evpark_demo.site_charger_CP+1"],
        "name": "CP+1",
        "via_device": "evpark_demo.site",
        "manufacturer": "ACME",
        "model": "X",
    }
    assert power["state_topic"] == "evpark/demo.site/chargers/CP%2B1/evses/2/state"
