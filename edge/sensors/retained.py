"""The edge's retained states on the broker: sent, sent again, and defended.

:class:`RetainedStates` queues what the edge publishes on its own topics (the latest
payload per topic wins), sends it with QoS 1 and retained, and tells when the broker has
acknowledged everything. Every state is sent again every ``mqtt.republish_interval``
seconds and after every (re)connect: a broker may have lost them.

The edge listens to its own topics too. Its own publications come back: they are
recognised by their payload. Anyone else's message there (a fake "free" from any client
on the broker) is counted (``evpark_mqtt_foreign_slot_writes_total{topic}``), logged
(``mqtt.slot.foreign_write``, rate-limited) and overwritten with the edge's state, at most
once a second per topic (two edges that disagree must not flood the broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque

import aiomqtt
import structlog

from edge.core.topics import is_slot_state_topic, summary_topic
from edge.sensors.log_limit import LogLimiter
from edge.sensors.metrics import MqttMetrics

log = structlog.get_logger("edge.sensors.retained")

CORRECTION_SPACING = 1.0  # seconds between two corrections of the same topic
_ECHOES_KEPT = 8  # own publications per topic whose echo has not come back yet


class RetainedStates:
    """The retained publications of one site's edge, across the broker connections."""

    def __init__(
        self, *, site_id: str, metrics: MqttMetrics, log_limiter: LogLimiter, every: float
    ) -> None:
        """``every``: seconds between two rounds that send every state again."""
        self._site_id = site_id
        self._metrics = metrics
        self._log_limiter = log_limiter
        self._republish_every = every
        self._log = log.bind(site=site_id)
        self._latest: dict[str, bytes] = {}  # topic -> the last payload we were asked to publish
        # topic -> (payload, request number): not yet acknowledged by the current broker. The
        # number tells a request made while the same payload was being sent from that send.
        self._dirty: dict[str, tuple[bytes, int]] = {}
        self._requests = itertools.count()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        # own publications not yet seen coming back, oldest first, per topic
        self._in_flight: dict[str, deque[bytes]] = {}
        self._corrected_at: dict[str, float] = {}  # topic -> loop time of its last correction
        self._deferred: dict[str, float] = {}  # topic -> loop time its correction may go
        self._deferred_added = asyncio.Event()

    async def wait_sent(self) -> None:
        """Until the broker has acknowledged everything published so far."""
        await self._idle.wait()

    def publish(self, topic: str, payload: bytes) -> None:
        """Queue ``payload`` on ``topic``; a payload already published there is not sent again."""
        if self._latest.get(topic) == payload:
            return
        self._latest[topic] = payload
        self._dirty[topic] = (payload, next(self._requests))
        self._idle.clear()
        self._wake.set()

    def connected(self) -> None:
        """A new broker connection (or a restarted broker) gets every state again."""
        self._in_flight.clear()  # echoes of the last session's publications will not come
        self._deferred.clear()
        self._queue_all("connect")
        self._wake.set()

    def _queue_all(self, reason: str) -> None:
        """Publish every slot state and the summary again (a broker may have lost them)."""
        if not self._latest:
            return
        self._dirty.update((t, (p, next(self._requests))) for t, p in self._latest.items())
        self._metrics.republished.labels(reason=reason).inc(len(self._latest))
        self._idle.clear()
        self._wake.set()

    def _correct(self, topic: str) -> None:
        payload = self._latest.get(topic)
        if payload is None:
            return
        self._corrected_at[topic] = asyncio.get_running_loop().time()
        self._dirty[topic] = (payload, next(self._requests))
        self._metrics.republished.labels(reason="correction").inc()
        self._idle.clear()
        self._wake.set()

    # -------------------------------------------------------------- the loops

    async def send(self, client: aiomqtt.Client) -> None:
        """Send what is queued, for as long as this connection lasts."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._dirty:
                topic, (payload, request) = next(iter(self._dirty.items()))
                echoes = self._in_flight.setdefault(topic, deque(maxlen=_ECHOES_KEPT))
                echoes.append(payload)  # before sending: the echo may beat the PUBACK
                await client.publish(topic, payload, qos=1, retain=True)
                # a correction asked for meanwhile goes out again: this send may have
                # reached the broker before the write it answers
                if self._dirty.get(topic, (b"", -1))[1] == request:
                    del self._dirty[topic]
            self._idle.set()

    async def republish(self) -> None:
        """Every state again each ``republish_interval``; deferred corrections when due."""
        loop = asyncio.get_running_loop()
        next_round = loop.time() + self._republish_every
        while True:
            self._deferred_added.clear()
            due = min([next_round, *self._deferred.values()])
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(due):
                    await self._deferred_added.wait()
            now = loop.time()
            if now >= next_round:
                self._queue_all("periodic")
                next_round = now + self._republish_every
            for topic, at in list(self._deferred.items()):
                if at <= now:
                    del self._deferred[topic]
                    self._correct(topic)

    # -------------------------------------------------------------- defending

    def owns(self, topic: str) -> bool:
        """One of the edge's slot or summary topics (which it listens to as well)."""
        return topic == summary_topic(self._site_id) or is_slot_state_topic(topic, self._site_id)

    def check(self, topic: str, payload: bytes, retained: bool) -> None:
        """A message on one of our slot or summary topics: our echo, or someone else's."""
        mine = self._latest.get(topic)
        if mine is None:
            return  # not a slot of this edge, or nothing published yet: nothing to defend
        echoes = self._in_flight.get(topic)
        if echoes and payload in echoes:
            # echoes come back in the order sent: older ones not seen were overtaken
            while echoes.popleft() != payload:
                continue
            return
        if payload == mine:
            return
        if retained:
            # stored before we subscribed (ours from before a restart, or anyone's): the
            # reconnect republish overwrites it unless ours is already on its way
            if topic not in self._dirty and not echoes:
                self._correct(topic)
            return
        which = "summary" if topic == summary_topic(self._site_id) else "slot"
        self._metrics.foreign_writes.labels(topic=which).inc()
        skipped = self._log_limiter.admit(("foreign", topic))
        if skipped is not None:
            self._log.warning(
                "mqtt.slot.foreign_write",
                topic=topic,
                payload=payload[:120].decode("utf-8", "replace"),
                suppressed=skipped,
            )
        now = asyncio.get_running_loop().time()
        last = self._corrected_at.get(topic, float("-inf"))
        if now - last >= CORRECTION_SPACING:
            self._correct(topic)
        elif topic not in self._deferred:
            self._deferred[topic] = last + CORRECTION_SPACING
            self._deferred_added.set()
