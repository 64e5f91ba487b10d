"""What the charging service does with the sites' events.

It consumes ``charging.events`` as durable consumer ``charging``: ``charging.started``,
``charging.progress``, ``charging.completed``, ``charging.failed``, ``charger.status``
and ``command.result``, the sites' answers to its commands; ``power.limit_changed`` and
``power.overshoot`` go to :mod:`central.charging.power`. It publishes no events: it
tells sites what to do through commands (:mod:`central.charging.commands`).

Each event's ``data`` is read through the contract (:func:`contract.events.parse_data`).
Where the contract is looser than this service, the service's own rule is checked here:
a meter delivers no negative energy (:func:`_delivered`), and an event reporting one is
dropped like one that does not fit its type (:func:`central.event_routing.dispatch`).
Every handler is idempotent: it records the event id in ``charging_history`` first
(:func:`central.charging.store.claim`) and stops if it was there; progress updates only
move forward in time.

Whose a session is, is decided by its id tag only (:meth:`ChargingEvents._subject_for`):
the vehicle and driver of a registered tag (an RFID card, or the app token of a remote
start), else the vehicle of a remote start with that tag on the same charger (and evse).
A session started with any other tag (a stranger's card) belongs to no vehicle: operators
and the site see it, priced, in the site's and charger's listings, no driver does.
Drivers see and act only for their own vehicles (:mod:`central.auth`).

``charging.failed`` marks the command it names (its code and reason; a pending one
failed) and the session it names (failed, unless it completed), and is kept in the
history as the vehicle's last failure (``GET /charging/status/{vehicle_id}``).

Every event first tells :meth:`central.charging.id_tags.IdTags.site_seen` that its site
exists, so a new site gets the id tag list.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Final, TypedDict

import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from central.charging import store
from central.charging.rates import rate_for
from central.context import ServiceContext
from central.event_routing import EventHandler, dispatch, read_valid
from central.infra.saturating import shift
from central.infra.shared_transaction import SharedTransaction
from central.pricing import price_reported_session
from central.reported_times import reported_amount
from contract.envelope import CHARGING_TOPIC, CloudEvent
from contract.events import (
    ChargerStatus,
    ChargingCompleted,
    ChargingFailed,
    ChargingProgress,
    ChargingStarted,
    CommandResultData,
    parse_data,
)

log = structlog.get_logger("central.charging")

TOPIC: Final = CHARGING_TOPIC
DURABLE: Final = "charging"
IDLE_POWER_W: Final = 50
# a remote start's tag names a session on its charger that starts after the command was
# made (clocks may differ this much) and before the command could expire
CLOCK_SKEW: Final = timedelta(minutes=2)
# the events that change a session's row besides its progress updates
SESSION_EVENTS: Final = frozenset(
    {ChargingStarted.TYPE, ChargingCompleted.TYPE, ChargingFailed.TYPE}
)


def _delivered(energy_wh: float, event: CloudEvent) -> float:
    """``energy_wh`` if a meter can have delivered it; a negative one makes the event
    invalid, as if its type refused it (the contract leaves ranges to consumers)."""
    if energy_wh < 0:
        raise ValidationError.from_exception_data(
            event.type,
            [
                {
                    "type": "greater_than_equal",
                    "loc": ("energy_wh",),
                    "input": energy_wh,
                    "ctx": {"ge": 0},
                }
            ],
        )
    return energy_wh


def _progress(event: CloudEvent) -> tuple[CloudEvent, ChargingProgress, float]:
    """A progress update as applied: the event, its data, its energy (ValidationError if
    either does not fit)."""
    data = parse_data(ChargingProgress, event)
    return event, data, _delivered(data.energy_wh, event)


def _meter_problem(event: CloudEvent, session_id: str, reported: float) -> None:
    """An energy no session delivers: the session is kept (its energy 0, the reported
    figure in its history's event data) and the problem logged, not dead-lettered."""
    log.warning(
        "charging.session.meter_problem",
        site=event.site_id,
        session=session_id,
        event_id=event.id,
        energy_wh=reported,
    )


class SubjectColumns(TypedDict):
    vehicle_id: str | None
    driver_id: str | None


@dataclass(frozen=True)
class Subject:
    """Whose a session or failure is (None: not known)."""

    vehicle_id: str | None = None
    driver_id: str | None = None

    def columns(self) -> SubjectColumns:
        """The subject as the columns of a session or history row."""
        return {"vehicle_id": self.vehicle_id, "driver_id": self.driver_id}


def _valid_for(tag: Any, site_id: str, started_at: datetime) -> bool:
    """A tag names a session started before it expired (give or take the clocks), and an
    app token only one at its own site."""
    if tag.site_id is not None and tag.site_id != site_id:
        return False
    return tag.expires_at is None or started_at <= shift(tag.expires_at, CLOCK_SKEW)


class ChargingEvents:
    def __init__(
        self,
        ctx: ServiceContext,
        answered: Callable[[str], None],
        site_seen: Callable[[str], Awaitable[None]],
        more: Mapping[str, EventHandler] | None = None,
    ) -> None:
        """``answered(command_id)``: a command's row changed (its waiters read it);
        ``site_seen(site_id)``: an event of the site arrived; ``more``: handlers of
        other types (the sites' power events, :mod:`central.charging.power`)."""
        self._ctx = ctx
        self._answered = answered
        self._site_seen = site_seen
        self._clock_policy = ctx.settings.reported_times.policy()
        self._tx = SharedTransaction(ctx.engine, "charging")
        # the handlers of this module: a batch's events of these types share a transaction
        self._own: dict[str, EventHandler] = {
            ChargingStarted.TYPE: self._on_started,
            ChargingProgress.TYPE: self._on_progress,
            ChargingCompleted.TYPE: self._on_completed,
            ChargingFailed.TYPE: self._on_failed,
            ChargerStatus.TYPE: self._on_charger_status,
            CommandResultData.TYPE: self._on_command_result,
        }
        self._handlers: dict[str, EventHandler] = {**self._own, **(more or {})}

    @property
    def types(self) -> frozenset[str]:
        """The event types it handles: the bus hands it no others."""
        return frozenset(self._handlers)

    async def handle(self, event: CloudEvent) -> None:
        """The bus's entry: run the event type's handler; ignore the types not consumed."""
        await self._site_seen(event.site_id)
        await dispatch(event, self._handlers, "charging")

    async def handle_batch(self, events: Sequence[CloudEvent]) -> None:
        """The bus's entry for several events, in order: this module's in one transaction
        (progress updates, most of the traffic, a run at a time), the others (power) each
        by its own handler after them (they touch none of the same rows)."""
        for site_id in sorted({event.site_id for event in events}):
            await self._site_seen(site_id)  # its own transaction, once per site
        # progress updates wait and go together, until an event of one of their sessions
        # (its start, end or failure) must see them applied first
        run: list[CloudEvent] = []
        waiting: set[Any] = set()
        async with self._tx.batch():
            for event in events:
                if event.type == ChargingProgress.TYPE:
                    run.append(event)
                    waiting.add(event.data.get("session_id"))
                    continue
                if event.type in SESSION_EVENTS and event.data.get("session_id") in waiting:
                    await self._progress_run(run)
                    run, waiting = [], set()
                if event.type in self._own:
                    await dispatch(event, self._own, "charging")
            await self._progress_run(run)
        for event in events:
            if event.type not in self._own:
                await dispatch(event, self._handlers, "charging")

    async def _subject_for(
        self,
        conn: AsyncConnection,
        site_id: str,
        charger_id: str,
        evse_id: int | None,
        id_tag: str | None,
        started_at: datetime,
    ) -> Subject:
        """Whose a session is, by its id tag only: the vehicle and driver the tag is
        registered to (a card, or a remote start's app token, each while valid: see
        :func:`_valid_for`), else the vehicle of a
        remote start with that very tag on that charger (and evse, when both name one)
        made before the session started and not expired by then. Anything else (no
        tag, a stranger's card) is no one's.

        Only the event's own data and what central issued decide, so events that arrive
        late (a site back from an outage) are attributed the same way."""
        if not id_tag:
            return Subject()
        registered = await store.tag(conn, id_tag)
        if registered is not None:
            if not _valid_for(registered, site_id, started_at):
                return Subject()
            return Subject(registered.vehicle_id, registered.driver_id)
        vehicle = await store.remote_start_vehicle(
            conn, site_id, charger_id, evse_id, id_tag, started_at, CLOCK_SKEW
        )
        return Subject(vehicle)

    async def _on_started(self, event: CloudEvent) -> None:
        data = parse_data(ChargingStarted, event)
        now = self._ctx.clock()
        async with self._tx.begin() as conn:
            subject = await self._subject_for(
                conn, event.site_id, data.charger_id, data.evse_id, data.id_tag, data.started_at
            )
            if not await store.claim(
                conn,
                event,
                "started",
                session_id=data.session_id,
                **subject.columns(),
            ):
                return
            await store.add_session(
                conn,
                event.site_id,
                data,
                unless_known=True,
                **subject.columns(),
                status="active",
                energy_wh=0,
                updated_at=now,
            )
        log.info("charging.session.started", site=event.site_id, session=data.session_id)

    async def _on_progress(self, event: CloudEvent) -> None:
        await self._apply_progress([_progress(event)])

    async def _progress_run(self, events: Sequence[CloudEvent]) -> None:
        """Progress events one after another: applied together (what is invalid logged
        and left out, as :func:`dispatch` does)."""
        run = [read_valid(_progress, event, "charging") for event in events]
        await self._apply_progress([update for update in run if update is not None])

    async def _apply_progress(
        self, run: Sequence[tuple[CloudEvent, ChargingProgress, float]]
    ) -> None:
        """Each update moves its session's live figures unless it is older than the one
        held; the sessions of the run are read in one query and written once each."""
        if not run:
            return
        now = self._ctx.clock()
        # a reading stamped by a clock in 9999 must not make every later one look older
        believed = shift(now, self._clock_policy.future_tolerance)
        async with self._tx.begin() as conn:
            rows = await store.sessions_by_id(conn, {data.session_id for _, data, _ in run})
            held: dict[str, dict[str, Any]] = {}
            for event, data, reported_energy in run:
                row = rows.get(data.session_id)
                if row is None or row.site_id != event.site_id or row.status != "active":
                    continue
                state = held.get(data.session_id) or {
                    "energy_wh": row.energy_wh,
                    "progress_at": row.progress_at,
                    "charging_ended_at": row.charging_ended_at,
                }
                progress_at = state["progress_at"]
                if progress_at is not None and data.at <= progress_at <= believed:
                    continue  # an older or repeated update
                idle = data.power_w is not None and data.power_w < IDLE_POWER_W
                charging_ended = state["charging_ended_at"] if idle else None
                if idle and charging_ended is None:
                    charging_ended = data.at
                energy = reported_amount(reported_energy)
                if energy is None:
                    _meter_problem(event, data.session_id, reported_energy)
                held[data.session_id] = {
                    "energy_wh": state["energy_wh"] if energy is None else energy,
                    "power_w": reported_amount(data.power_w),
                    "progress_at": data.at,
                    "charging_ended_at": charging_ended,
                    "updated_at": now,
                }
            await store.update_sessions(conn, held)

    async def _on_completed(self, event: CloudEvent) -> None:
        data = parse_data(ChargingCompleted, event)
        reported_energy = _delivered(data.energy_wh, event)
        now = self._ctx.clock()
        energy = reported_amount(reported_energy)
        if energy is None:
            _meter_problem(event, data.session_id, reported_energy)
        async with self._tx.begin() as conn:
            row = await store.session(conn, data.session_id)
            if row is not None and row.site_id != event.site_id:
                log.warning("charging.session.foreign", site=event.site_id, session=data.session_id)
                return
            subject = (
                Subject(row.vehicle_id, row.driver_id)
                if row is not None
                else await self._subject_for(
                    conn, event.site_id, data.charger_id, data.evse_id, data.id_tag, data.started_at
                )
            )
            rate = await rate_for(conn, event.site_id)
            cost, problem = None, None
            if rate is not None:
                cost, problem = price_reported_session(
                    rate,
                    data.started_at,
                    data.stopped_at,
                    energy or 0,
                    row.charging_ended_at if row else None,
                    received=now,
                    policy=self._clock_policy,
                )
            if problem is not None:
                log.warning(
                    "charging.session.clock_problem",
                    site=event.site_id,
                    charger=data.charger_id,
                    session=data.session_id,
                    problem=problem,
                    started_at=data.started_at,
                    stopped_at=data.stopped_at,
                )
            if not await store.claim(
                conn,
                event,
                "completed",
                session_id=data.session_id,
                **subject.columns(),
                energy_wh=energy,
                cost=None if cost is None else str(cost.total),
            ):
                return
            values = {
                "status": "completed",
                "stopped_at": data.stopped_at,
                "energy_wh": energy or 0,
                "reason": data.reason or None,
                **subject.columns(),
                "updated_at": now,
            }
            if row is None:
                await store.add_session(conn, event.site_id, data, unless_known=False, **values)
            else:
                await store.update_session(conn, data.session_id, **values)
        log.info(
            "charging.session.completed",
            site=event.site_id,
            session=data.session_id,
            energy_wh=energy,
        )

    async def _on_failed(self, event: CloudEvent) -> None:
        data = parse_data(ChargingFailed, event)
        now = self._ctx.clock()
        async with self._tx.begin() as conn:
            command = None
            if data.command_id:
                command = await store.command(conn, data.command_id, event.site_id)
            session = None
            if data.session_id:
                session = await store.session(conn, data.session_id, event.site_id)
            subject = await self._failure_subject(conn, event, data, command, session)
            if not await store.claim(
                conn,
                event,
                "failed",
                session_id=data.session_id,
                **subject.columns(),
            ):
                return
            if command is not None:
                await store.record_failure(
                    conn, command.id, event.site_id, data.code, data.reason, now
                )
            if data.session_id:
                await self._fail_session(conn, event, data, session, subject, now)
        log.info(
            "charging.failed",
            site=event.site_id,
            code=data.code,
            command_id=data.command_id,
            session=data.session_id,
        )
        if command is not None:
            self._tx.after_commit(partial(self._answered, command.id))

    async def _failure_subject(
        self,
        conn: AsyncConnection,
        event: CloudEvent,
        data: ChargingFailed,
        command: Any,
        session: Any,
    ) -> Subject:
        """Whose a failure is: the session's, else the remote start's (with the driver
        of its app token), else its id tag's."""
        if session is not None:
            return Subject(session.vehicle_id, session.driver_id)
        if command is not None:
            token = None if command.id_tag is None else await store.tag(conn, command.id_tag)
            return Subject(command.vehicle_id, None if token is None else token.driver_id)
        return await self._subject_for(
            conn, event.site_id, data.charger_id, data.evse_id, data.id_tag, event.time
        )

    @staticmethod
    async def _fail_session(
        conn: AsyncConnection,
        event: CloudEvent,
        data: ChargingFailed,
        session: Any,
        subject: Subject,
        now: datetime,
    ) -> None:
        """The session the failure ended is failed (one that completed stays so); one
        central never heard of (a refused token: no ``charging.started``) is kept as
        failed, with no energy, at the event's time."""
        assert data.session_id is not None
        values = {"status": "failed", "reason": data.code, "updated_at": now}
        if session is None:
            await store.insert_session(
                conn,
                unless_known=True,
                id=data.session_id,
                site_id=event.site_id,
                charger_id=data.charger_id,
                evse_id=data.evse_id,
                id_tag=data.id_tag,
                **subject.columns(),
                started_at=event.time,
                stopped_at=event.time,
                energy_wh=0,
                **values,
            )
        elif session.status == "active":
            await store.update_session(
                conn, data.session_id, stopped_at=max(event.time, session.started_at), **values
            )

    async def _on_charger_status(self, event: CloudEvent) -> None:
        data = parse_data(ChargerStatus, event)
        async with self._tx.begin() as conn:
            await store.add_station(
                conn,
                event.site_id,
                data.charger_id,
                status=data.status,
                online=data.online,
                evses="{}",
                updated_at=event.time,
            )
            row = await store.station(conn, event.site_id, data.charger_id)
            if row.updated_at > event.time:
                return  # an older status than the one held
            evses = json.loads(row.evses)
            # an EVSE's own status (0 included) only when the event names one: the contract
            # reads a missing evse_id as 0, the charger as a whole
            if "evse_id" in data.model_fields_set:
                evses[str(data.evse_id)] = {"status": data.status, "error_code": data.error_code}
            await store.update_station(
                conn,
                event.site_id,
                data.charger_id,
                status=data.status if data.evse_id == 0 else row.status,
                online=data.online,
                error_code=data.error_code,
                evses=json.dumps(evses),
                updated_at=max(event.time, row.updated_at),
            )

    async def _on_command_result(self, event: CloudEvent) -> None:
        result = parse_data(CommandResultData, event)
        now = self._ctx.clock()
        async with self._tx.begin() as conn:
            row = await store.command(conn, result.command_id, event.site_id)
            if row is None:
                return  # not a charging command (or another site's: ignored)
            if not await store.claim(
                conn,
                event,
                f"command.{result.status}",
                session_id=row.session_id,
                vehicle_id=row.vehicle_id,
            ):
                return
            await store.set_command_result(
                conn, result.command_id, result.status, result.detail, result.result, now
            )
        log.info(
            "charging.command.result",
            site=event.site_id,
            command_id=result.command_id,
            status=result.status,
        )
        self._tx.after_commit(partial(self._answered, result.command_id))
