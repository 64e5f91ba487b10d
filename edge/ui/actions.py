"""A technician's and an admin's actions from the UI: charger commands, slot changes and
user management. Each one checks its input, runs through the same code as the JSON API
(``send_command``, ``SlotService``), is written to the audit trail with its outcome, and
answers with an :class:`ActionResult` that names the charger's own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog

from edge.core import commands as cmd
from edge.core.ids import ChargerId, SlotId, uuid7
from edge.core.logs import LOG_TYPES, NOT_SENT, LogType
from edge.ocpp.charger_calls import ChargerOffline, CommandTimeout, InvalidCommand, send_command
from edge.ocpp.connection import CallFailed
from edge.services import users as u
from edge.services.logs import NoPublicUrl
from edge.storage.sqlite import StoreError, Unit
from edge.ui.views import TRIGGER_MESSAGES, SiteViews

log = structlog.get_logger(__name__)
Form = Mapping[str, str]


class BadInput(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ActionResult:
    ok: bool
    status_code: int
    message: str
    answer: str | None = None  # the charger's status word (Accepted, Rejected, ...)
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "message": self.message, "answer": self.answer,
                "detail": self.detail}  # fmt: skip


def _int(form: Form, name: str, low: int, high: int, default: int | None = None) -> int | None:
    text = form.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError as err:
        raise BadInput(f"{name} must be a whole number") from err
    if not low <= value <= high:
        raise BadInput(f"{name} must be between {low} and {high}")
    return value


class Actions:
    def __init__(self, views: SiteViews, passwords: u.Passwords) -> None:
        self.views = views
        self.site = views.site
        self.store = views.site.store
        self.passwords = passwords

    async def audit(
        self, user: u.User, action: str, target: str, result: ActionResult, form: Form
    ) -> ActionResult:
        detail = {k: v for k, v in form.items() if k not in {"csrf_token", "password", "confirm"}}
        unit = Unit()
        u.add_audit(unit, self.views.clock(), user.username, action, target,
                    result.answer or ("ok" if result.ok else result.message), detail)  # fmt: skip
        try:
            await self.store.write(unit)
        except StoreError as err:  # the action happened; losing its audit row is logged
            log.error("ui.audit.failed", action=action, target=target, error=str(err))
        log.info("ui.action", user=user.username, action=action, target=target, ok=result.ok,
                 answer=result.answer)  # fmt: skip
        return result

    # --- chargers ------------------------------------------------------------------

    async def charger(self, user: u.User, charger_id: str, name: str, form: Form) -> ActionResult:
        if ChargerId(charger_id) not in self.site.chargers:
            return ActionResult(False, 404, f"no charger {charger_id!r}")
        if name == "get-diagnostics":
            log_type = form.get("log_type", "DiagnosticsLog")
            if log_type not in LOG_TYPES:
                return ActionResult(False, 422, f"a log is one of {', '.join(LOG_TYPES)}")
            result = await self._get_diagnostics(charger_id, log_type)
            return await self.audit(user, name, charger_id, result, form)
        try:
            command = self._command(charger_id, name, form)
        except BadInput as err:
            return ActionResult(False, 422, str(err))
        result = await self._send(charger_id, name, command)
        return await self.audit(user, name, charger_id, result, form)

    async def _get_diagnostics(self, charger_id: str, log_type: LogType) -> ActionResult:
        """A log request (docs/diagnostics.md): made, sent, and the answer recorded."""
        requests = self.site.logs
        try:
            request, command = await requests.start(ChargerId(charger_id), log_type)
        except NoPublicUrl as err:
            return ActionResult(False, 422, str(err))
        result = await self._send(charger_id, "get-diagnostics", command)
        if result.status_code == 200:
            await requests.answered(request, result.answer or "", result.detail.get("file_name"))
        elif result.status_code != 504:  # not sent: no upload will come
            await requests.answered(request, NOT_SENT, None)
        return result

    def _command(self, charger_id: str, name: str, form: Form) -> cmd.Command:
        match name:
            case "remote-start":
                id_tag = form.get("id_tag", "").strip()
                if not 1 <= len(id_tag) <= 20:
                    raise BadInput("an id tag has 1 to 20 characters")
                return cmd.RemoteStart(id_tag, _int(form, "evse_id", 1, 99))
            case "remote-stop":
                wanted = form.get("session_id", "")
                mine = [s for s in self.site.active_sessions() if s.charger_id == charger_id]
                found = [s for s in mine if s.id == wanted] if wanted else mine
                if len(found) != 1:
                    raise BadInput("choose one active session of this charger to stop")
                return cmd.RemoteStop(found[0].transaction_id)
            case "reset":
                kind = form.get("type", "soft")
                if kind not in {"soft", "hard"}:
                    raise BadInput("a reset is soft or hard")
                return cmd.Reset(hard=kind == "hard")
            case "unlock":
                evse = _int(form, "evse_id", 1, 99, default=1)
                assert evse is not None
                connector = _int(form, "connector_id", 1, 99, default=1)
                assert connector is not None
                return cmd.Unlock(evse, connector)
            case "availability":
                evse = _int(form, "evse_id", 0, 99, default=0)
                assert evse is not None
                operative = form.get("operative", "")
                if operative not in {"true", "false"}:
                    raise BadInput("choose operative or inoperative")
                return cmd.ChangeAvailability(operative == "true", evse)
            case "trigger":
                message = form.get("message", "")
                if message not in TRIGGER_MESSAGES:
                    raise BadInput(f"a trigger is one of {', '.join(TRIGGER_MESSAGES)}")
                return cmd.TriggerMessage(message, _int(form, "evse_id", 0, 99))
        raise BadInput(f"no command {name!r}")

    async def _send(self, charger_id: str, name: str, command: cmd.Command) -> ActionResult:
        label = f"{charger_id}: {name}"
        try:
            outcome = await send_command(self.views.server, ChargerId(charger_id), command)
        except ChargerOffline:
            return ActionResult(False, 409, f"{label}: the charger is not connected")
        except CommandTimeout:
            return ActionResult(False, 504, f"{label}: the charger did not answer in time")
        except InvalidCommand as err:
            return ActionResult(False, 422, f"{label}: {err}")
        except CallFailed as err:
            return ActionResult(
                False, 502, f"{label}: the charger answered with an error, {err.code}",
                answer=err.code, detail={"description": err.description},
            )  # fmt: skip
        return ActionResult(
            outcome.accepted, 200, f"{label}: the charger answered {outcome.status}",
            answer=outcome.status, detail=outcome.detail,
        )  # fmt: skip

    # --- slots ---------------------------------------------------------------------

    async def slot(self, user: u.User, slot_id: str, name: str, form: Form) -> ActionResult:
        model = self.views.slots.model
        if model is None or SlotId(slot_id) not in model.state.slots:
            return ActionResult(False, 404, f"no slot {slot_id!r}")
        try:
            result = await self._slot(SlotId(slot_id), name, form)
        except BadInput as err:
            return ActionResult(False, 422, str(err))
        except StoreError as err:
            return ActionResult(False, 503, f"slot {slot_id}: not saved ({err})")
        return await self.audit(user, name, slot_id, result, form)

    async def _slot(self, slot_id: SlotId, name: str, form: Form) -> ActionResult:
        service = self.views.slots
        assert service.model is not None
        view = service.model.view(slot_id)
        match name:
            case "out-of-service":
                reason = form.get("reason", "").strip()[:200] or "technician"
                await service.set_out_of_service(slot_id, True, reason)
            case "in-service":
                await service.set_out_of_service(slot_id, False, "")
            case "reserve":
                if view.reservation_id is not None:
                    return ActionResult(False, 409, f"slot {slot_id} is already reserved")
                minutes = _int(form, "minutes", 1, 7 * 24 * 60, default=60)
                assert minutes is not None
                until = self.views.clock() + timedelta(minutes=minutes)
                await service.reserve(slot_id, f"local-{uuid7()}", until)
            case "cancel-reservation":
                if view.reservation_id is None:
                    return ActionResult(False, 404, f"slot {slot_id} has no reservation")
                await service.cancel_reservation(slot_id, view.reservation_id)
            case _:
                raise BadInput(f"no slot action {name!r}")
        state = service.model.view(slot_id).state.value
        return ActionResult(True, 200, f"slot {slot_id}: {name} done, now {state}", answer=state)

    # --- users ---------------------------------------------------------------------

    async def user(self, admin: u.User, name: str, form: Form) -> ActionResult:
        username = form.get("username", "").strip()
        try:
            result = await self._user(admin, name, username, form)
        except u.UserError as err:
            return ActionResult(False, 422, str(err))
        except StoreError as err:
            return ActionResult(False, 409, f"user {username}: not saved ({err})")
        return await self.audit(admin, f"user-{name}", username, result, form)

    async def _user(self, admin: u.User, name: str, username: str, form: Form) -> ActionResult:
        now = self.views.clock()
        unit = Unit()
        match name:
            case "create":
                role = u.parse_role(form.get("role", "viewer"))
                password = form.get("password", "")
                if password != form.get("confirm", ""):
                    raise u.UserError("the two passwords differ")
                await self.store.read(lambda c: u.check_new(c, username))
                hashed = await asyncio.to_thread(self.passwords.hash, password)
                u.insert_user(unit, username, hashed, role, now)
                message = f"created {username} ({role})"
            case "set-role":
                role = u.parse_role(form.get("role", ""))
                await self.store.read(lambda c: u.check_role_change(c, username, role))
                u.update_role(unit, username, role, now)
                message = f"{username} is now {role}"
            case "delete":
                if username.lower() == admin.username.lower():
                    raise u.UserError("you cannot delete yourself")
                await self.store.read(lambda c: u.check_delete(c, username))
                u.delete_user(unit, username)
                message = f"deleted {username}"
            case _:
                raise u.UserError(f"no user action {name!r}")
        await self.store.write(unit)
        return ActionResult(True, 200, message)
