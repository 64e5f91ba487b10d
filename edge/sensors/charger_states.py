"""The chargers' live state on the site's broker, retained (docs/mqtt.md#charger-states).

:class:`ChargerStates` follows the site's changes (wired by the daemon) and publishes, through
the edge's retained publisher (latest per topic wins, QoS 1, again after a reconnect):

- ``evpark/<site>/chargers/<id>/status``: ``online`` / ``offline``;
- ``evpark/<site>/chargers/<id>/evses/<n>/state``: the EVSE's status, power and session
  energy (:func:`edge.core.charger_states.evse_state_document`).

Meter values come many times a minute: an EVSE's state goes out at most once per
``mqtt.charger_state_interval``, a change of status, error or session at once, and what
was held back when its interval is up, so the last value always reaches the broker.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable

import structlog

from edge.core.charger_states import Spacing, evse_ids, evse_state_document, urgent_fields
from edge.core.ids import ChargerId
from edge.core.model import Charger, Evse, Session
from edge.core.topics import charger_status_topic, evse_state_topic

log = structlog.get_logger(__name__)

Publish = Callable[[str, bytes], None]
_EvseKey = tuple[ChargerId, int]


class ChargerStates:
    def __init__(
        self,
        *,
        site_id: str,
        publish: Publish,
        charger: Callable[[ChargerId], Charger | None],
        session_on: Callable[[ChargerId, int], Session | None],
        every: float,
    ) -> None:
        """``charger`` and ``session_on`` read the site's in-memory state; ``every``:
        seconds between two publications of one EVSE's power and energy."""
        self._site_id = site_id
        self._publish = publish
        self._charger = charger
        self._session_on = session_on
        self._spacing: Spacing[_EvseKey] = Spacing(every)
        self._urgent: dict[_EvseKey, tuple[object, ...]] = {}  # as last published
        # EVSEs the site config names (slots) before their charger said anything
        self._configured: dict[_EvseKey, Evse] = {}
        self._timer: asyncio.TimerHandle | None = None

    def publish_all(
        self, charger_ids: Iterable[ChargerId], evses: Iterable[tuple[ChargerId, int, int]]
    ) -> None:
        """Every charger's status and EVSE states; ``evses`` (charger, EVSE, connector)
        are those the site config's slots name, published as ``unknown`` until heard of."""
        for charger_id, evse_id, connector_id in evses:
            self._configured[(charger_id, evse_id)] = Evse(evse_id, connector_id)
        for charger_id in charger_ids:
            self.charger_changed(charger_id)
            configured_evses = [e for c, e in self._configured if c == charger_id]
            for evse_id in evse_ids(self._charger(charger_id), configured_evses):
                self.evse_changed(charger_id, evse_id, metered=False)

    def charger_changed(self, charger_id: ChargerId) -> None:
        """Connected, disconnected, booted: its status."""
        charger = self._charger(charger_id)
        online = charger is not None and charger.connected
        self._publish(
            charger_status_topic(self._site_id, charger_id), b"online" if online else b"offline"
        )

    def evse_changed(self, charger_id: ChargerId, evse_id: int, *, metered: bool) -> None:
        """A status or session change (``metered`` False), or new meter values (True)."""
        if evse_id <= 0:
            return  # EVSE 0 is the charger as a whole: no state of its own here
        key = (charger_id, evse_id)
        now = asyncio.get_running_loop().time()
        if metered:
            if self._spacing.offer(key, now):
                self._send(key)
            else:
                self._wake_at(self._spacing.next_due())
            return
        document = self._document(key)
        if document is None:
            return
        urgent = urgent_fields(document) != self._urgent.get(key)
        if self._spacing.offer(key, now, urgent=urgent):
            self._send(key, document)
        else:
            self._wake_at(self._spacing.next_due())

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ------------------------------------------------------------------------------------

    def _document(self, key: _EvseKey) -> dict[str, object] | None:
        charger_id, evse_id = key
        charger = self._charger(charger_id)
        evse = charger.evses.get(evse_id) if charger is not None else None
        if evse is None:
            evse = self._configured.get(key)
        if evse is None:
            return None
        session = self._session_on(charger_id, evse_id)
        return evse_state_document(self._site_id, charger_id, evse, session)

    def _send(self, key: _EvseKey, document: dict[str, object] | None = None) -> None:
        document = document or self._document(key)
        if document is None:
            return
        self._urgent[key] = urgent_fields(document)
        topic = evse_state_topic(self._site_id, *key)
        self._publish(topic, json.dumps(document, separators=(",", ":")).encode())

    def _wake_at(self, due: float | None) -> None:
        if due is None:
            return
        if self._timer is not None and self._timer.when() <= due:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(due, self._flush)

    def _flush(self) -> None:
        self._timer = None
        for key in self._spacing.due(asyncio.get_running_loop().time()):
            self._send(key)
        self._wake_at(self._spacing.next_due())
