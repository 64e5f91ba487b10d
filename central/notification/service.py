"""The notification service: composition of its core, storage, channels and API.

Events in (``parking.events`` and ``charging.events``, durable consumer
``notification``) become rows in ``notifications`` + ``notification_queue`` in one
transaction, unique per (event, user, channel): a redelivered event notifies nobody
twice. A queue worker, owned by :meth:`start` / :meth:`stop`, sends what is due, retries
with backoff and jitter, and dead-letters after the last attempt.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

import httpx
import structlog
from fastapi import APIRouter

from central.context import ServiceContext
from central.event_routing import dispatch
from central.infra.lifetimes import Background
from central.notification import store
from central.notification.api import make_router
from central.notification.errors import (
    CircuitOpenError,
    DeliveryError,
    PermanentDeliveryError,
)
from central.notification.model import NOTIFIED_EVENT_TYPES, Channel, notified_data
from central.notification.planning import plan
from central.notification.preferences import concerned_by, deliver_at
from central.notification.retry import DeadLetter, after_failure
from central.notification.senders import (
    GuardedSender,
    HttpProviderSender,
    OutgoingMessage,
    Sender,
    SmtpSender,
)
from central.notification.settings import NotificationSettings
from contract.envelope import CHARGING_TOPIC, PARKING_TOPIC, CloudEvent

log = structlog.get_logger("central.notification")

DURABLE = "notification"


class NotificationService:
    name = "notification"

    def __init__(self, ctx: ServiceContext, rand: Callable[[], float] = random.random) -> None:
        self._ctx = ctx
        self._settings: NotificationSettings = ctx.settings.notification
        self._policy = self._settings.retry_policy()
        self._clock_policy = ctx.settings.reported_times.policy()
        self._rand = rand
        self._background = Background(self.name)
        self._wakeup: asyncio.Event | None = None
        self._http: httpx.AsyncClient | None = None
        self.senders: dict[Channel, GuardedSender] = {}
        self._handlers = dict.fromkeys(NOTIFIED_EVENT_TYPES, self._notify)

    # -- lifetime ------------------------------------------------------------------

    def router(self) -> APIRouter:
        return make_router(self._ctx.engine, self._ctx.clock, self.wake, self.breaker_modes)

    async def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._http = httpx.AsyncClient(follow_redirects=False)
        self.senders = self._build_senders(self._http)
        await self._background.start()
        for topic in (PARKING_TOPIC, CHARGING_TOPIC):
            await self._ctx.bus.subscribe(
                topic, DURABLE, self.handle, self.handle_batch, frozenset(self._handlers)
            )
        self._background.supervise("notification.queue", self._run_queue)
        self._ctx.metrics.on_scrape("notification.queue", self._measure_queue)
        log.info("notification.started", channels=sorted(self.senders))

    async def stop(self) -> None:
        await self._background.stop()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _measure_queue(self) -> None:
        for state, count in (await store.queue_depths(self._ctx.engine)).items():
            self._ctx.metrics.notification_queue.labels(state).set(count)

    def _build_senders(self, client: httpx.AsyncClient) -> dict[Channel, GuardedSender]:
        s = self._settings
        inner: dict[Channel, Sender] = {}
        if s.smtp.host:
            inner["email"] = SmtpSender(s.smtp)
        if s.sms.url:
            inner["sms"] = HttpProviderSender("sms", s.sms, client)
        if s.push.url:
            inner["push"] = HttpProviderSender("push", s.push, client)
        return {
            channel: GuardedSender(
                channel,
                sender,
                failure_threshold=s.breaker_failures,
                reset_after=s.breaker_reset_s,
            )
            for channel, sender in inner.items()
        }

    def wake(self) -> None:
        """Tell the queue worker there may be work (new or requeued messages)."""
        if self._wakeup is not None:
            self._wakeup.set()

    # -- events in -----------------------------------------------------------------

    async def handle(self, event: CloudEvent) -> None:
        """Plan and queue the notifications of one event (idempotent by event id); an event
        whose data does not fit its type is logged and dropped."""
        await dispatch(event, self._handlers, self.name)

    async def handle_batch(self, events: Sequence[CloudEvent]) -> None:
        """Several events, in order: most (progress updates) concern no one's messages."""
        for event in events:
            if event.type in self._handlers:
                await self.handle(event)

    async def _notify(self, event: CloudEvent) -> None:
        data = notified_data(event)
        if data is None:
            return
        who = concerned_by(data)
        if not who:
            log.debug("notification.event.nobody", event_id=event.id, event_type=event.type)
            return
        now = self._ctx.clock()
        async with self._ctx.engine.begin() as conn:
            candidates = await store.candidates(conn, who)
            if not candidates:
                return
            overrides = await store.template_overrides(conn, event.type)
            planned = plan(
                event,
                candidates,
                overrides,
                now,
                fallback_locale=self._settings.default_locale,
                urgent_types=frozenset(self._settings.urgent_event_types),
                clock_policy=self._clock_policy,
            )
            new = await store.enqueue(conn, planned)
        log.info(
            "notification.planned",
            event_id=event.id,
            event_type=event.type,
            planned=len(planned),
            new=new,
        )
        if new:
            self.wake()

    # -- the queue -----------------------------------------------------------------

    async def _run_queue(self) -> None:
        assert self._wakeup is not None
        while True:
            self._wakeup.clear()
            handled = await self.process_due()
            if handled >= self._settings.batch_size:
                continue
            try:
                async with asyncio.timeout(self._settings.poll_interval_s):
                    await self._wakeup.wait()
            except TimeoutError:
                pass

    async def process_due(self) -> int:
        """Claim the messages due now and try each once; returns how many were claimed."""
        s = self._settings
        batch = await store.claim_due(
            self._ctx.engine, self._ctx.clock(), timedelta(seconds=s.lease_s), s.batch_size
        )
        if batch:
            async with asyncio.TaskGroup() as group:
                for item in batch:
                    group.create_task(self._deliver(item), name=f"notification:{item.id}")
        return len(batch)

    async def _deliver(self, item: store.QueuedMessage) -> None:
        engine, clock = self._ctx.engine, self._ctx.clock
        attempt = item.attempts + 1
        bound = log.bind(
            notification_id=item.id, channel=item.channel, user_id=item.user_id, attempt=attempt
        )
        sender = self.senders.get(item.channel)
        try:
            if sender is None:
                raise PermanentDeliveryError(f"channel {item.channel} is not configured")
            await sender.send(
                OutgoingMessage(
                    id=item.id,
                    channel=item.channel,
                    address=item.address,
                    subject=item.subject,
                    body=item.body,
                    event_type=item.event_type,
                    event_id=item.event_id,
                    user_id=item.user_id,
                )
            )
        except CircuitOpenError as err:
            # not an attempt: the channel is resting; try again when the breaker allows
            until = clock() + timedelta(seconds=err.retry_after)
            await store.mark_retry(
                engine, item.id, attempts=item.attempts, at=until, error=str(err), now=clock()
            )
            bound.info("notification.deferred", until=until.isoformat(), reason=str(err))
            return
        except DeliveryError as err:
            now = clock()
            decision = after_failure(
                self._policy,
                attempts=attempt,
                error=str(err),
                permanent=isinstance(err, PermanentDeliveryError),
                now=now,
                rand=self._rand(),
            )
            if isinstance(decision, DeadLetter):
                await store.mark_dead(
                    engine, item.id, attempts=attempt, error=decision.error, now=now
                )
                bound.error("notification.dead_lettered", error=decision.error)
                return
            at = decision.at
            if not item.urgent:
                async with engine.connect() as conn:
                    prefs = await store.get_preferences(conn, item.user_id)
                if prefs is not None:
                    at = deliver_at(prefs, at, urgent=False)
            await store.mark_retry(
                engine, item.id, attempts=attempt, at=at, error=decision.error, now=now
            )
            bound.warning("notification.retry_scheduled", at=at.isoformat(), error=decision.error)
            return
        await store.mark_sent(engine, item.id, attempt, clock())
        bound.info("notification.sent", event_type=item.event_type)

    def breaker_modes(self) -> Mapping[str, str]:
        return {channel: sender.breaker.mode for channel, sender in self.senders.items()}
