"""The sync service: edges upload event batches and fetch their commands.

* ``POST /sync/v1/events``: a site key posts an :class:`~contract.sync_api.EventBatch` of its
  own events (any other source is refused with 403). New events are stored in one
  transaction with the site's sequence (idempotent by event id, gap-free, see
  :mod:`central.sync.batches`), then published on the bus (``parking.events`` /
  ``charging.events``) in sequence order. Stored events not yet published (a crash
  between commit and publish) are published again by a supervised loop; consumers are
  idempotent by event id.
* ``GET /sync/v1/commands?wait=S``: the site's pending commands (not acknowledged, not
  expired), long-polling up to ``S`` seconds. ``POST /sync/v1/commands/{id}/ack``: the
  edge has stored the command; it is not delivered again.
* Commands arrive from other services on the internal topic ``central.site_commands``
  (:mod:`central.site_commands`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from central.auth import Principal, require
from central.context import ServiceContext
from central.infra.db import insert_ignore
from central.infra.lifetimes import Background
from central.site_commands import COMMAND_REQUESTED, COMMANDS_TOPIC
from central.sync.admission import Admission, Overloaded
from central.sync.batches import BatchRejected, SequenceGapError, plan_batch, published_runs
from central.sync.presence import record_contact
from central.sync.tables import commands, events, sites
from contract.envelope import CloudEvent, topic_for
from contract.sync_api import (
    COMMANDS_PATH,
    EVENTS_PATH,
    STATUS_PATH,
    BatchAck,
    Command,
    CommandList,
    EventBatch,
    SequenceGap,
    SyncStatus,
)

log = structlog.get_logger("central.sync")

MAX_COMMANDS_PER_FETCH = 100


class SyncService:
    name = "sync"

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._background = Background("sync")
        self._wakeups: dict[str, asyncio.Event] = {}
        # on a bus that is not durable (in process), events count as published only once
        # its consumers have handled them; until then a crash leaves them to republish
        self._unconfirmed: dict[str, tuple[str, int]] = {}  # id -> (site, sequence)
        self._confirm = asyncio.Event()
        self._admission = Admission(ctx.settings.ingest_concurrency, ctx.settings.ingest_queue)

    # ---- lifetime -------------------------------------------------------------------
    async def start(self) -> None:
        await self._background.start()
        await self.ctx.bus.subscribe(COMMANDS_TOPIC, "sync", self._on_command)
        self._background.supervise("sync.republish", self._republish_loop)
        self.ctx.metrics.on_scrape("sync.unpublished", self._measure_unpublished)
        if _in_process(self.ctx.bus):
            self._background.supervise("sync.confirm", self._confirm_loop)

    async def stop(self) -> None:
        await self._background.stop()

    # ---- ingest ---------------------------------------------------------------------
    async def ingest(self, site_id: str, batch: EventBatch) -> BatchAck:
        now = self.ctx.clock()
        engine = self.ctx.engine
        ids = [e.id for e in batch.events]
        async with engine.begin() as conn:
            await conn.execute(
                insert_ignore(engine.dialect.name, sites, ["site_id"]).values(
                    site_id=site_id, last_sequence=0
                )
            )
            # the update takes the site's row lock: batches of one site are serialised
            await conn.execute(
                update(sites).where(sites.c.site_id == site_id).values(last_seen_at=now)
            )
            last = (
                await conn.execute(select(sites.c.last_sequence).where(sites.c.site_id == site_id))
            ).scalar_one()
            known: dict[str, str] = {}
            for chunk in _chunks(ids, 1000):
                rows = await conn.execute(
                    select(events.c.id, events.c.site_id).where(events.c.id.in_(chunk))
                )
                known.update({r.id: r.site_id for r in rows})
            foreign = [i for i, s in known.items() if s != site_id]
            if foreign:
                raise BatchRejected(f"event id {foreign[0]} is already used by another site")
            plan = plan_batch(batch.events, last, known)
            if plan.new:
                await conn.execute(
                    insert(events),
                    [
                        {
                            "id": e.id,
                            "site_id": site_id,
                            "sequence": e.sequence,
                            "type": e.type,
                            "time": e.time,
                            "received_at": now,
                            "body": e.model_dump_json(),
                        }
                        for e in plan.new
                    ],
                )
                last = plan.new[-1].sequence
                await conn.execute(
                    update(sites).where(sites.c.site_id == site_id).values(last_sequence=last)
                )
        self.ctx.metrics.ingest_events.inc(len(plan.new))
        self.ctx.metrics.ingest_duplicates.inc(plan.duplicates)
        if plan.new:
            await self._publish(plan.new)
            log.info(
                "sync.batch.stored",
                site=site_id,
                stored=len(plan.new),
                duplicates=plan.duplicates,
                last_sequence=last,
            )
        return BatchAck(stored=len(plan.new), duplicates=plan.duplicates, last_sequence=last)

    async def _measure_unpublished(self) -> None:
        async with self.ctx.engine.connect() as conn:
            waiting = await conn.scalar(
                select(func.sum(sites.c.last_sequence - sites.c.published_sequence))
            )
        self.ctx.metrics.sync_unpublished.set(waiting or 0)

    async def _publish(self, new: tuple[CloudEvent, ...] | list[CloudEvent]) -> None:
        by_topic: dict[str, list[CloudEvent]] = {}
        for event in new:  # in sequence order, which each topic keeps
            by_topic.setdefault(topic_for(event.type), []).append(event)
        for topic, events_of_topic in by_topic.items():
            await self.ctx.bus.publish_many(topic, events_of_topic)
        marks = {e.id: (e.site_id, e.sequence) for e in new}
        if _in_process(self.ctx.bus):
            self._unconfirmed.update(marks)
            self._confirm.set()
        else:
            await self._mark_published(marks.values())

    async def _mark_published(self, published: Iterable[tuple[str, int]]) -> None:
        """Move each site's published mark over the runs of sequences now on the bus: one
        row per site, not one per event. A run that does not start right after the mark
        (an earlier upload's events are not published yet) leaves it where it is: the
        republish loop sends the events from the mark on again."""
        s = sites.c
        async with self.ctx.engine.begin() as conn:
            for site_id, first, last in published_runs(published):
                await conn.execute(
                    update(sites)
                    .where(
                        s.site_id == site_id,
                        s.published_sequence >= first - 1,
                        s.published_sequence < last,
                    )
                    .values(published_sequence=last)
                )

    async def _confirm_loop(self) -> None:
        """Mark events published once the in-process consumers have handled them."""
        caught_up = getattr(self.ctx.bus, "caught_up")  # noqa: B009 - checked by _in_process
        while True:
            await self._confirm.wait()
            self._confirm.clear()
            handed_over = dict(self._unconfirmed)  # published before caught_up() began
            await caught_up()
            await self._mark_published(handed_over.values())
            for event_id in handed_over:
                self._unconfirmed.pop(event_id, None)

    async def _republish_loop(self) -> None:
        interval = self.ctx.settings.republish_interval_s
        while True:
            await self.republish_pending(older_than=timedelta(seconds=interval))
            await asyncio.sleep(interval)

    async def republish_pending(self, older_than: timedelta) -> int:
        cutoff = self.ctx.clock() - older_than
        async with self.ctx.engine.connect() as conn:
            # each site's events after its published mark (received before the cutoff:
            # not those an upload is publishing now), the sites behind found by their row
            e, s = events.c, sites.c
            rows = (
                await conn.execute(
                    select(e.body)
                    .join_from(events, sites, e.site_id == s.site_id)
                    .where(
                        s.published_sequence < s.last_sequence,
                        e.sequence > s.published_sequence,
                        e.received_at <= cutoff,
                    )
                    .order_by(e.site_id, e.sequence)
                    .limit(1000)
                )
            ).all()
        pending = [
            event
            for event in (CloudEvent.model_validate_json(r.body) for r in rows)
            if event.id not in self._unconfirmed  # on their way to the consumers
        ]
        if pending:
            log.info("sync.republish", events=len(pending))
            await self._publish(pending)
        return len(pending)

    async def site_status(self, site_id: str) -> SyncStatus:
        now = self.ctx.clock()
        async with self.ctx.engine.connect() as conn:
            last = (
                await conn.execute(select(sites.c.last_sequence).where(sites.c.site_id == site_id))
            ).scalar_one_or_none()
            pending = (
                await conn.execute(
                    select(func.count())
                    .select_from(commands)
                    .where(
                        commands.c.site_id == site_id,
                        commands.c.acked_at.is_(None),
                        commands.c.expires_at > now,
                    )
                )
            ).scalar_one()
        return SyncStatus(site_id=site_id, last_sequence=last or 0, pending_commands=pending)

    # ---- commands -------------------------------------------------------------------
    async def _on_command(self, event: CloudEvent) -> None:
        if event.type != COMMAND_REQUESTED:
            return
        try:
            command = Command.model_validate(event.data)
        except ValueError as err:
            log.error("sync.command.invalid", event_id=event.id, error=str(err))
            return
        engine = self.ctx.engine
        async with engine.begin() as conn:
            await conn.execute(
                insert_ignore(engine.dialect.name, commands, ["id"]).values(
                    id=command.id,
                    site_id=command.site_id,
                    type=command.type,
                    body=command.model_dump_json(),
                    created_at=command.created_at,
                    expires_at=command.expires_at,
                )
            )
        log.info("sync.command.queued", site=command.site_id, command_id=command.id)
        self._wakeup(command.site_id).set()

    def _wakeup(self, site_id: str) -> asyncio.Event:
        event = self._wakeups.get(site_id)
        if event is None:
            event = self._wakeups[site_id] = asyncio.Event()
        return event

    async def contact(self, site_id: str) -> None:
        """The site's edge is talking to central now (see :mod:`central.sync.presence`)."""
        await record_contact(self.ctx.cache, self.ctx.settings, site_id, self.ctx.clock())

    async def pending_commands(
        self,
        site_id: str,
        wait: float,
        gone: Callable[[], Awaitable[bool]] | None = None,
    ) -> list[Command]:
        """The site's pending commands, waiting up to ``wait`` s for one; the site counts
        as in contact while it waits, until ``gone()`` says the edge hung up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            if gone is not None and await gone():
                return []
            await self.contact(site_id)
            wakeup = self._wakeup(site_id)
            wakeup.clear()
            found = await self._take_pending(site_id)
            remaining = deadline - loop.time()
            if found or remaining <= 0:
                return found
            # woken by a command queued in this process, or re-check now and then
            # (another replica may have queued it)
            try:
                async with asyncio.timeout(min(remaining, 1.0)):
                    await wakeup.wait()
            except TimeoutError:
                pass

    async def _take_pending(self, site_id: str) -> list[Command]:
        now = self.ctx.clock()
        async with self.ctx.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(commands.c.id, commands.c.body)
                    .where(
                        commands.c.site_id == site_id,
                        commands.c.acked_at.is_(None),
                        commands.c.expires_at > now,
                    )
                    .order_by(commands.c.created_at, commands.c.id)
                    .limit(MAX_COMMANDS_PER_FETCH)
                )
            ).all()
            if rows:
                await conn.execute(
                    update(commands)
                    .where(commands.c.id.in_([r.id for r in rows]))
                    .values(delivered_at=now, deliveries=commands.c.deliveries + 1)
                )
        return [Command.model_validate_json(r.body) for r in rows]

    async def ack(self, site_id: str, command_id: str) -> bool:
        async with self.ctx.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(commands.c.acked_at).where(
                        commands.c.id == command_id, commands.c.site_id == site_id
                    )
                )
            ).first()
            if row is None:
                return False
            if row.acked_at is None:
                await conn.execute(
                    update(commands)
                    .where(commands.c.id == command_id)
                    .values(acked_at=self.ctx.clock())
                )
        return True

    # ---- HTTP -----------------------------------------------------------------------
    def router(self) -> APIRouter:
        router = APIRouter(tags=["sync"])
        site_key = Depends(require("site"))

        @router.post(
            EVENTS_PATH,
            response_model=BatchAck,
            summary="Upload a batch of the site's events (idempotent by event id)",
            responses={
                403: {"description": "an event belongs to another site"},
                503: {"description": "too many uploads at once: retry after Retry-After"},
                409: {"model": SequenceGap, "description": "the batch leaves a gap"},
            },
        )
        async def post_events(batch: EventBatch, principal: Principal = site_key) -> Any:
            site_id = _site_of(principal)
            await self.contact(site_id)
            for event in batch.events:
                if event.site_id != site_id:
                    raise HTTPException(
                        status.HTTP_403_FORBIDDEN,
                        f"site {site_id} cannot write events of {event.source}",
                    )
            try:
                async with self._admission.slot():
                    return await self.ingest(site_id, batch)
            except Overloaded as err:
                log.warning("sync.ingest.overloaded", site=site_id, retry_after=err.retry_after)
                return JSONResponse(
                    status_code=503,
                    content={"detail": str(err)},
                    headers={"Retry-After": str(err.retry_after)},
                )
            except SequenceGapError as err:
                return JSONResponse(
                    status_code=409,
                    content=SequenceGap(
                        detail=str(err), expected_sequence=err.expected
                    ).model_dump(),
                )
            except BatchRejected as err:
                raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
            except IntegrityError as err:
                # a concurrent batch of the same site won the race: the edge retries
                raise HTTPException(
                    status.HTTP_409_CONFLICT, "a concurrent batch was stored; retry"
                ) from err

        @router.get(
            COMMANDS_PATH,
            response_model=CommandList,
            summary="The site's pending commands (long-poll with ?wait=seconds)",
        )
        async def get_commands(
            request: Request,
            wait: Annotated[float, Query(ge=0, le=120)] = 0.0,
            principal: Principal = site_key,
        ) -> CommandList:
            site_id = _site_of(principal)
            wait = min(wait, self.ctx.settings.max_command_wait_s)
            return CommandList(
                commands=await self.pending_commands(site_id, wait, request.is_disconnected)
            )

        @router.post(
            COMMANDS_PATH + "/{command_id}/ack",
            status_code=204,
            summary="Acknowledge a command the edge has stored",
            responses={404: {"description": "no such command for this site"}},
        )
        async def ack_command(command_id: str, principal: Principal = site_key) -> Response:
            await self.contact(_site_of(principal))
            if not await self.ack(_site_of(principal), command_id):
                raise HTTPException(status.HTTP_404_NOT_FOUND, "no such command for this site")
            return Response(status_code=204)

        @router.get(
            STATUS_PATH,
            response_model=SyncStatus,
            summary="The last sequence central holds for the site, pending commands",
        )
        async def get_status(principal: Principal = site_key) -> SyncStatus:
            await self.contact(_site_of(principal))
            return await self.site_status(_site_of(principal))

        return router


def _in_process(bus: object) -> bool:
    """The in-process bus is not durable: it can tell when its consumers caught up."""
    return callable(getattr(bus, "caught_up", None))


def _site_of(principal: Principal) -> str:
    if principal.site_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this key belongs to no site")
    return principal.site_id


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
