"""Commands the charging service sends the sites, and their answers.

A start or stop asked for over the API, and a site's new rates, become a command for the
site's edge (:mod:`central.site_commands`): a row in ``charging_commands`` (status
``pending``) and a message to the sync service, which queues it for the site. The
charger's answer comes back as a ``command.result`` or ``charging.failed`` event
(:mod:`central.charging.events`), which updates the row and wakes whoever waits for it
here (:meth:`Commands.wake`); a command nobody answers expires at ``expires_at``.

A remote start carries a per-session app token (:mod:`central.charging.tokens`), stored
with the command as the vehicle's and driver's id tag: the site accepts it for that
vehicle until it expires, and the session it starts is that vehicle's. The site answers
``accepted`` only once a session has begun with it (``result.session_id``); ``rejected``
when the charger refuses, ``failed`` when no session begins in time or the token is
refused, each also reported as ``charging.failed`` with the command's id and a code.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import structlog

from central.auth import Principal, check_vehicle
from central.charging import store
from central.charging.schema import (
    CommandAnswer,
    FirmwareRequest,
    StartRequest,
    StopRequest,
    command_answer,
)
from central.charging.tokens import APP_TOKEN_TTL, new_app_token
from central.context import ServiceContext
from central.site_commands import new_command, send_command
from common.timestamps import format_timestamp
from contract.sync_api import CommandType

log = structlog.get_logger("central.charging")

# another replica may have handled the answer: while waiting, re-read this often
REREAD_S: Final = 0.5


class Commands:
    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._waiters: dict[str, asyncio.Event] = {}

    def wake(self, command_id: str) -> None:
        """The command's row changed: whoever waits for it in this process reads it now."""
        waiter = self._waiters.get(command_id)
        if waiter is not None:
            waiter.set()

    def wake_all(self) -> None:
        """The service stops: no one waits any longer."""
        for waiter in self._waiters.values():
            waiter.set()

    async def issue(
        self,
        site_id: str,
        type_: CommandType,
        payload: dict[str, Any],
        *,
        charger_id: str | None,
        vehicle_id: str | None,
        session_id: str | None = None,
        id_tag: str | None = None,
        evse_id: int | None = None,
        ttl_s: float | None = None,
        app_token: dict[str, Any] | None = None,
    ) -> str:
        """Record and send a command for the site (valid ``ttl_s``, default the
        settings'); its id. ``app_token``: the columns of the app token the command
        carries, stored with it in one transaction."""
        command = new_command(
            site_id,
            type_,
            payload,
            self._ctx.clock(),
            self._ctx.settings.command_ttl_s if ttl_s is None else ttl_s,
        )
        async with self._ctx.engine.begin() as conn:
            if app_token is not None and id_tag is not None:
                await store.add_tag(conn, id_tag, **app_token)
            await store.insert_command(
                conn,
                command,
                charger_id=charger_id,
                vehicle_id=vehicle_id,
                session_id=session_id,
                id_tag=id_tag,
                evse_id=evse_id,
            )
        await send_command(self._ctx.bus, command)
        log.info("charging.command.sent", site=site_id, command_id=command.id, type=type_)
        return command.id

    async def start_charging(self, body: StartRequest, principal: Principal) -> str:
        """A remote start with a new app token for the vehicle and its driver (the
        caller; for an operator, the driver of the vehicle's card, if known);
        :class:`ValueError` for a charger offline or a vehicle already charging."""
        now = self._ctx.clock()
        async with self._ctx.engine.connect() as conn:
            station = await store.station(conn, body.site_id, body.charger_id)
            active = await store.active_session(conn, vehicle_id=body.vehicle_id)
            driver_id = principal.user_id
            if principal.scope == "operator":
                driver_id = await store.vehicle_driver(conn, body.vehicle_id)
        if station is not None and station.online is False:
            raise ValueError(f"charger {body.charger_id} is offline")
        if active is not None:
            raise ValueError(f"vehicle {body.vehicle_id} is already charging (session {active.id})")
        token, token_expires_at = new_app_token(), now + APP_TOKEN_TTL
        payload: dict[str, Any] = {
            "charger_id": body.charger_id,
            "id_tag": token,
            "vehicle_id": body.vehicle_id,
            "driver_id": driver_id,
            "token_expires_at": format_timestamp(token_expires_at),
        }
        if body.evse_id is not None:
            payload["evse_id"] = body.evse_id
        return await self.issue(
            body.site_id,
            "remote_start",
            payload,
            charger_id=body.charger_id,
            vehicle_id=body.vehicle_id,
            id_tag=token,
            evse_id=body.evse_id,
            app_token={
                "vehicle_id": body.vehicle_id,
                "driver_id": driver_id,
                "kind": "app",
                "status": "Accepted",
                "expires_at": token_expires_at,
                "site_id": body.site_id,
                "created_at": now,
            },
        )

    async def stop_charging(self, body: StopRequest, principal: Principal) -> str:
        """A remote stop; :class:`ValueError` without a vehicle or session id,
        :class:`KeyError` without an active session."""
        if body.session_id is None and body.vehicle_id is None:
            raise ValueError("give vehicle_id or session_id")
        async with self._ctx.engine.connect() as conn:
            session = await store.active_session(
                conn,
                session_id=body.session_id,
                vehicle_id=None if body.session_id is not None else body.vehicle_id,
            )
        if session is None:
            raise KeyError("no active charging session for that vehicle or session id")
        check_vehicle(principal, session.vehicle_id, "a session of no vehicle of its own")
        return await self.issue(
            session.site_id,
            "remote_stop",
            {
                "charger_id": session.charger_id,
                "session_id": session.id,
                "transaction_id": session.transaction_id,
                "vehicle_id": session.vehicle_id,
            },
            charger_id=session.charger_id,
            vehicle_id=session.vehicle_id,
            session_id=session.id,
        )

    async def update_firmware(self, body: FirmwareRequest) -> str:
        """A firmware campaign on the site's chargers (all of them without ``chargers``)."""
        payload = body.model_dump(mode="json", exclude_none=True, exclude={"site_id"})
        return await self.issue(
            body.site_id, "update_firmware", payload, charger_id=None, vehicle_id=None
        )

    async def answer(self, command_id: str, wait: float = 0.0) -> CommandAnswer | None:
        """The command's state, waiting up to ``wait`` seconds for a final answer; None
        for no such command."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(wait, self._ctx.settings.max_command_wait_s)
        while True:
            waiter = self._waiters.setdefault(command_id, asyncio.Event())
            async with self._ctx.engine.connect() as conn:
                row = await store.command(conn, command_id)
            if row is None:
                self._waiters.pop(command_id, None)
                return None
            answer = command_answer(row, self._ctx.clock())
            remaining = deadline - loop.time()
            if answer.status != "pending" or remaining <= 0:
                self._waiters.pop(command_id, None)
                return answer
            try:
                async with asyncio.timeout(min(remaining, REREAD_S)):
                    await waiter.wait()
            except TimeoutError:
                pass

    async def vehicle(self, command_id: str) -> str | None:
        """The vehicle a command was for (None: none, or no such command)."""
        async with self._ctx.engine.connect() as conn:
            row = await store.command(conn, command_id)
        return None if row is None else row.vehicle_id
