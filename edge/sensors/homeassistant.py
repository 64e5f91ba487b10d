"""Home Assistant's MQTT discovery, published (docs/home-assistant.md).

:class:`HomeAssistantDiscovery` publishes the config documents that
:mod:`edge.core.homeassistant` builds, retained, through the edge's retained publisher: the
site's at start, a charger's again when it appears, boots (its vendor, model and firmware)
or reports an EVSE not seen before. Unchanged documents are not sent again.

It also watches ``<prefix>/+/<node_id>/+/config``: a retained config document there that
the current site config does not produce (a slot or charger removed since it was
published) is removed with an empty retained message, which Home Assistant takes as
"delete this entity".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

import structlog

from edge.config import SiteConfig
from edge.core.charger_states import evse_ids, site_charger_ids
from edge.core.homeassistant import (
    DiscoveryCharger,
    DiscoverySite,
    DiscoverySlot,
    charger_entities,
    discovery_topic_filter,
    site_entities,
)
from edge.core.ids import ChargerId, charger_key
from edge.core.model import Charger

log = structlog.get_logger(__name__)

Publish = Callable[[str, bytes], None]


class HomeAssistantDiscovery:
    def __init__(
        self,
        *,
        config: SiteConfig,
        publish: Publish,
        charger: Callable[[ChargerId], Charger | None],
        sw_version: str,
    ) -> None:
        self._config = config
        self._publish = publish
        self._charger = charger
        self.site = DiscoverySite(
            site_id=config.site.id,
            name=config.site.name,
            prefix=config.mqtt.homeassistant_prefix,
            sw_version=sw_version,
        )
        self._log = log.bind(site=config.site.id)
        self._topics: set[str] = set()  # every config document published by this run

    @property
    def topic_filter(self) -> str:
        return discovery_topic_filter(self.site)

    def publish_all(self, known: Iterable[ChargerId]) -> None:
        """The site's entities and every configured or known charger's."""
        slots = [DiscoverySlot(s.id, s.type, s.label) for s in self._config.slots]
        types = sorted({s.type for s in self._config.slots})
        self._send(site_entities(self.site, slots, types))
        configured = [c.id for c in self._config.chargers]
        configured += [s.charger for s in self._config.slots if s.charger is not None]
        for charger_id in site_charger_ids(configured, known):
            self.charger_changed(charger_id)

    def charger_changed(self, charger_id: ChargerId) -> None:
        """Appeared, booted or reported an EVSE: its entities (unchanged ones stay as sent)."""
        key = charger_key(charger_id)
        configured = self._config.charger(charger_id)
        slot_evses = [
            s.evse
            for s in self._config.slots
            if s.charger is not None and charger_key(s.charger) == key and s.evse is not None
        ]
        charger = self._charger(charger_id)
        described = DiscoveryCharger(
            charger_id=charger_id,
            evse_ids=tuple(evse_ids(charger, slot_evses)),
            info=charger.info if charger is not None else None,
            description=configured.description if configured is not None else "",
        )
        self._send(charger_entities(self.site, described))

    def receive(self, topic: str, payload: bytes, retained: bool) -> None:
        """A config document under this site's node: left from an older config?"""
        if not retained or not payload or topic in self._topics:
            return
        self._log.info("homeassistant.stale_entity_removed", topic=topic)
        self._publish(topic, b"")

    def _send(self, documents: dict[str, dict[str, object]]) -> None:
        for topic, document in documents.items():
            self._topics.add(topic)
            self._publish(topic, json.dumps(document, separators=(",", ":")).encode())
