"""Central's ``remote_start`` on the site: the app token, the charger's start, the session.

Central sends a per-session app token (``id_tag``, valid until ``token_expires_at``) with
the vehicle and driver it stands for (shared design of issue 12). The site stores the
token as Accepted for them *before* it asks the charger, so the charger's
StartTransaction / TransactionEvent is accepted even if central is out of reach by then.
The command is ``accepted`` only once a session has begun with the token (its
``session_id`` in the result); a charger that refuses, stays silent, is offline, or whose
session does not begin within ``ocpp.remote_start_timeout`` makes it ``rejected`` or
``failed``, and central also gets ``charging.failed`` with the ``command_id``.

The wait can take a minute: the command worker runs remote starts beside the other
commands (:mod:`edge.uplink.sync`), so a reservation is not held up behind one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from common.timestamps import InvalidTimestamp
from contract.sync_api import CommandStatus
from edge.core import commands as cmd
from edge.core.ids import ChargerId
from edge.core.model import AuthorizationStatus, Session, Subject
from edge.ocpp.charger_calls import ChargerOffline, CommandTimeout, InvalidCommand, send_command
from edge.ocpp.connection import CallFailed
from edge.ocpp.server import OcppServer
from edge.services import failures
from edge.services.site import Site
from edge.storage import site_sql as repo
from edge.storage.sqlite import Unit

Outcome = tuple[CommandStatus, str, dict[str, Any]]


class BadRemoteStart(ValueError):
    """The payload cannot be carried out (the runner answers ``rejected``)."""


class RemoteStart:
    def __init__(self, site: Site, server: OcppServer) -> None:
        self.site = site
        self.server = server

    async def run(self, command_id: str, payload: dict[str, Any], unit: Unit) -> Outcome:
        """Start the charge ``payload`` asks for; a failure's event goes into ``unit``."""
        charger_id = str(payload.get("charger_id") or "")
        id_tag = str(payload.get("id_tag") or "")
        if not charger_id or not id_tag:
            raise BadRemoteStart("remote_start needs charger_id and id_tag")
        evse = payload.get("evse_id")
        subject = Subject(_text(payload.get("vehicle_id")), _text(payload.get("driver_id")), id_tag)
        await self._register_token(id_tag, subject, payload.get("token_expires_at"))
        base: dict[str, Any] = {"charger_id": charger_id, "evse_id": evse}

        def failed(status: CommandStatus, code: str, detail: str, **extra: Any) -> Outcome:
            event = failures.charging_failed(
                charger_id, evse if isinstance(evse, int) else None, code, subject,
                detail=detail, command_id=command_id,
            )  # fmt: skip
            repo.add_outbox_event(unit, event, charger_id, self.site.clock())
            return status, detail, {**base, **extra, "code": code}

        starts = self.site.sessions.remote_starts
        began = starts.expect(id_tag, command_id)
        try:
            try:
                answer = await send_command(
                    self.server, ChargerId(charger_id), cmd.RemoteStart(id_tag, evse)
                )
            except ChargerOffline:
                return failed("failed", "ChargerOffline", f"charger {charger_id} is not connected")
            except CommandTimeout:
                return failed(
                    "failed", "RemoteStartTimeout", f"charger {charger_id} did not answer"
                )
            except (InvalidCommand, CallFailed) as err:
                return failed("rejected", "RemoteStartRejected", str(err)[:200])
            base["charger_status"] = answer.status
            if not answer.accepted:
                return failed(
                    "rejected", "RemoteStartRejected", f"charger answered {answer.status}"
                )
            timeout = self.site.config.ocpp.remote_start_timeout
            try:
                session = await asyncio.wait_for(asyncio.shield(began), timeout)
            except TimeoutError:
                return failed(
                    "failed", "RemoteStartTimeout", f"no session began within {timeout:g} s"
                )
        finally:
            starts.forget(id_tag, command_id)
        return _began(session, base)

    async def _register_token(self, id_tag: str, subject: Subject, expires: object) -> None:
        """An app token (it comes with its expiry) is accepted for its vehicle and driver
        from now on; a remote start without one uses a tag the site already knows."""
        if expires is None:
            return
        try:
            until = repo.parse_iso(str(expires))
        except InvalidTimestamp as err:
            raise BadRemoteStart(f"bad token_expires_at: {err}") from err
        entry = repo.IdTagEntry(
            AuthorizationStatus.ACCEPTED, until, "central", subject.vehicle_id, subject.driver_id
        )
        await self.site.grant_id_tag(id_tag, entry)


def _began(session: Session, base: dict[str, Any]) -> Outcome:
    """The result once a session began: accepted, unless its token was refused (then the
    session's own ``charging.failed`` named this command)."""
    if session.refused:
        detail = f"the charger's start was refused: {session.id_tag_status.value}"
        return "failed", detail, {**base, "code": "TokenRefused"}
    began = {**base, "session_id": session.id, "transaction_id": session.transaction_id}
    return "accepted", "session began", began


def _text(value: object) -> str | None:
    return str(value) if value else None
