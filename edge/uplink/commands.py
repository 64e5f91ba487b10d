"""Carrying out central's commands on the site: reservations, remote start
(:mod:`edge.uplink.remote_start`) and stop, rates, id tag lists, firmware updates
(:mod:`edge.uplink.firmware`), a temporary site limit (:mod:`edge.uplink.site_limit`).
Each ends in a ``command.result`` event for central, written in the same transaction as
the command's final status, so a command is answered exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
import structlog
from pydantic import ValidationError

from contract.events import CommandResultData, ParkingReleased, ParkingReserved, data_json
from contract.sync_api import CommandResult, CommandStatus
from edge.core import commands as cmd
from edge.core.firmware import BadOrder
from edge.core.ids import ChargerId, IdTag, SlotId, ocpp_reservation_id
from edge.core.model import AuthorizationStatus, Subject
from edge.core.slots.values import SlotState
from edge.ocpp.charger_calls import ChargerOffline, CommandTimeout, InvalidCommand, send_command
from edge.ocpp.connection import CallFailed
from edge.ocpp.server import OcppServer
from edge.power.manager import LoadManager
from edge.services.site import Site, local_list
from edge.services.slots import SlotService
from edge.storage import site_sql as repo
from edge.storage.sqlite import Unit
from edge.storage.sync_sql import StoredCommand, save_finished, set_meta
from edge.uplink.firmware import update_firmware
from edge.uplink.remote_start import BadRemoteStart, RemoteStart
from edge.uplink.site_limit import BadLimit, set_site_limit

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]


class Rejected(Exception):
    """The command cannot be carried out; the message says why."""


class CloudCommandRunner:
    def __init__(
        self,
        site: Site,
        slots: SlotService,
        server: OcppServer,
        clock: Clock,
        power: LoadManager | None = None,
    ) -> None:
        """``power``: the site's load manager (None: a site without one rejects
        ``set_site_limit``)."""
        self.site = site
        self.slots = slots
        self.server = server
        self.clock = clock
        self.power = power
        self.remote_start = RemoteStart(site, server)

    @staticmethod
    def waits_long(command: StoredCommand) -> bool:
        """A command that waits for a charger's session (up to ``ocpp.remote_start_timeout``):
        the worker runs it beside the others rather than before them."""
        return command.type == "remote_start"

    async def run(self, command: StoredCommand) -> CommandResult:
        """Carry out ``command`` and store its result with the event for central."""
        unit = Unit()
        now = self.clock()
        if command.expires_at <= now:
            result = self._result(command, "expired", "the command expired before it could run")
        else:
            try:
                status, detail, data = await self._dispatch(command, unit)
                result = self._result(command, status, detail, data)
            except (Rejected, BadRemoteStart) as err:
                result = self._result(command, "rejected", str(err))
            except ChargerOffline as err:
                result = self._result(command, "failed", f"charger {err} is not connected")
            except CommandTimeout as err:
                result = self._result(command, "timeout", f"charger {err} did not answer")
            except (InvalidCommand, CallFailed) as err:
                result = self._result(command, "failed", str(err))
            except Exception as err:  # one bad command must not stop the site
                # answered once as failed, so it is not run again after a restart
                log.exception("sync.command.crashed", command=command.id, type=command.type)
                unit = Unit()
                result = self._result(command, "failed", f"internal error: {type(err).__name__}")
        save_finished(unit, command.id, result.status, result.model_dump(), self.clock())
        repo.add_outbox_event(
            unit, CommandResultData(**result.model_dump()), command.id, self.clock()
        )
        await self.site.store.write(unit)
        log.info("sync.command.done", command=command.id, type=command.type, status=result.status)
        return result

    @staticmethod
    def _result(
        command: StoredCommand,
        status: CommandStatus,
        detail: str = "",
        data: dict[str, Any] | None = None,
    ) -> CommandResult:
        return CommandResult(
            command_id=command.id,
            command_type=command.type,  # type: ignore[arg-type]
            status=status,
            detail=detail,
            result=data or {},
        )

    async def _dispatch(
        self, command: StoredCommand, unit: Unit
    ) -> tuple[CommandStatus, str, dict[str, Any]]:
        payload = command.payload
        match command.type:
            case "reserve":
                return await self._reserve(command.id, payload, unit)
            case "cancel_reservation":
                return await self._cancel(payload, unit)
            case "remote_start":
                await self._release_charger_hold(payload)
                return await self.remote_start.run(command.id, payload, unit)
            case "remote_stop":
                return await self._remote_stop(payload)
            case "update_rates":
                rates = payload.get("rates", [])
                set_meta(unit, repo.RATES_KEY, orjson.dumps(rates).decode())
                self.site.rates = rates  # the next completed session names it
                return "accepted", "", {"rates": rates}
            case "update_id_tags":
                return await self._id_tags(payload, unit)
            case "update_firmware":
                try:
                    return await update_firmware(self.site, self.server, payload)
                except BadOrder as err:
                    raise Rejected(f"update_firmware: {err}") from err
            case "set_site_limit":
                try:
                    return await set_site_limit(self.power, payload, self.clock())
                except BadLimit as err:
                    raise Rejected(str(err)) from err
        raise Rejected(f"unknown command type {command.type!r}")

    # --- reservations --------------------------------------------------------------------

    async def _release_charger_hold(self, payload: dict[str, Any]) -> None:
        """A charger holding its connector for a reservation refuses a start with any other
        tag, the app token included. When the remote start is for the reservation's own
        vehicle or driver, the charger lets go of it first (the site keeps the slot)."""
        assert self.slots.model is not None
        charger_id = ChargerId(str(payload.get("charger_id") or ""))
        wanted = {payload.get("vehicle_id"), payload.get("driver_id")} - {None, ""}
        for reservation_id in self.slots.model.reservations_at(charger_id):
            held = self.slots.reservation_subject(reservation_id)
            if not wanted & {held.vehicle_id, held.driver_id}:
                continue
            with contextlib.suppress(ChargerOffline, CommandTimeout, CallFailed):
                await send_command(
                    self.server,
                    charger_id,
                    cmd.CancelReservation(ocpp_reservation_id(reservation_id)),
                )
            log.info(
                "sync.reservation.released_for_start",
                charger=charger_id,
                reservation=reservation_id,
            )

    def _pick_slot(self, payload: dict[str, Any], reservation_id: str) -> SlotId:
        assert self.slots.model is not None
        views = {v.slot_id: v for v in self.slots.model.views()}
        held = next((v for v in views.values() if v.reservation_id == reservation_id), None)
        if held is not None:
            return held.slot_id  # run again after a crash: the slot is already held
        wanted = payload.get("slot_id")
        if wanted:
            view = views.get(SlotId(str(wanted)))
            if view is None:
                raise Rejected(f"no slot {wanted!r} at this site")
            if view.state is not SlotState.FREE:
                raise Rejected(f"slot {wanted!r} is {view.state.value}")
            return view.slot_id
        slot_type = payload.get("slot_type")
        for view in views.values():
            if view.state is SlotState.FREE and (slot_type is None or view.slot_type == slot_type):
                return view.slot_id
        raise Rejected(f"no free slot of type {slot_type or 'any'!r}")

    async def _reserve(
        self, command_id: str, payload: dict[str, Any], unit: Unit
    ) -> tuple[CommandStatus, str, dict[str, Any]]:
        reservation_id = str(payload.get("reservation_id") or command_id)
        until = repo.parse_iso(payload.get("ends_at"))
        slot_id = self._pick_slot(payload, reservation_id)
        spec = next(s for s in self.slots.config.slots if s.id == slot_id)
        vehicle_id = payload.get("vehicle_id")
        try:  # what central will hear, checked before anything is done
            reserved = ParkingReserved(
                slot_id=slot_id,
                reservation_id=reservation_id,
                starts_at=payload.get("starts_at"),
                ends_at=payload.get("ends_at"),
                command_id=command_id,
                vehicle_id=vehicle_id,
                driver_id=payload.get("driver_id"),
                id_tag=payload.get("id_tag"),
            )
        except ValidationError as err:
            raise Rejected(f"reserve: {err.errors()[0]['msg']}") from err
        subject = Subject(reserved.vehicle_id, reserved.driver_id, reserved.id_tag)
        charger_answer: str | None = None
        # the charger holds the connector for this tag (central's default: the vehicle id)
        id_tag = payload.get("id_tag") or (str(vehicle_id)[:20] if vehicle_id else None)
        if spec.charger is not None and spec.evse is not None and id_tag and until is not None:
            try:
                outcome = await send_command(
                    self.server,
                    ChargerId(spec.charger),
                    cmd.ReserveNow(ocpp_reservation_id(reservation_id), spec.evse, id_tag, until),
                )
            except ChargerOffline:
                charger_answer = "offline"  # the slot is still held on the site
            else:
                charger_answer = outcome.status
                if not outcome.accepted:
                    raise Rejected(f"charger {spec.charger} answered {outcome.status}")
        await self.slots.reserve(slot_id, reservation_id, until, subject)
        reserved = reserved.model_copy(update={"charger_status": charger_answer})
        repo.add_outbox_event(unit, reserved, slot_id, self.clock())
        return "accepted", "", data_json(reserved)

    async def _cancel(
        self, payload: dict[str, Any], unit: Unit
    ) -> tuple[CommandStatus, str, dict[str, Any]]:
        assert self.slots.model is not None
        reservation_id = str(payload.get("reservation_id", ""))
        view = next(
            (v for v in self.slots.model.views() if v.reservation_id == reservation_id), None
        )
        if view is None:
            return self._release_used(reservation_id, unit)
        if view.charger_id is not None:
            # an offline charger's own reservation expires on its own
            with contextlib.suppress(ChargerOffline):
                await send_command(
                    self.server,
                    view.charger_id,
                    cmd.CancelReservation(ocpp_reservation_id(reservation_id)),
                )
        subject = self.slots.reservation_subject(reservation_id)
        await self.slots.cancel_reservation(view.slot_id, reservation_id)
        released = ParkingReleased(
            slot_id=view.slot_id, reservation_id=reservation_id, reason="cancelled",
            **subject.fields(),
        )  # fmt: skip
        repo.add_outbox_event(unit, released, view.slot_id, self.clock())
        return "accepted", "", data_json(released)

    def _release_used(
        self, reservation_id: str, unit: Unit
    ) -> tuple[CommandStatus, str, dict[str, Any]]:
        """The driver ends a reservation while its vehicle is still in the slot: the visit
        goes on, the reservation is over (and its driver told, as for a cancelled one)."""
        assert self.slots.model is not None
        slot_id = self.slots.model.slot_in_use_by(reservation_id)
        if slot_id is None:
            raise Rejected(f"no reservation {reservation_id!r} on this site")
        subject = self.slots.reservation_subject(reservation_id)
        released = ParkingReleased(
            slot_id=slot_id, reservation_id=reservation_id, reason="released",
            **subject.fields(),
        )  # fmt: skip
        repo.add_outbox_event(unit, released, slot_id, self.clock())
        return "accepted", "the vehicle is still in the slot", data_json(released)

    # --- charging ------------------------------------------------------------------------

    async def _remote_stop(
        self, payload: dict[str, Any]
    ) -> tuple[CommandStatus, str, dict[str, Any]]:
        sessions = self.site.active_sessions()
        if payload.get("session_id"):
            sessions = [s for s in sessions if s.id == payload["session_id"]]
        if payload.get("transaction_id"):
            sessions = [s for s in sessions if s.transaction_id == str(payload["transaction_id"])]
        if payload.get("charger_id"):
            sessions = [s for s in sessions if s.charger_id == payload["charger_id"]]
        if payload.get("id_tag"):
            sessions = [s for s in sessions if s.id_tag == payload["id_tag"]]
        if len(sessions) != 1:
            raise Rejected(f"{len(sessions)} active sessions match; name one")
        session = sessions[0]
        outcome = await send_command(
            self.server, session.charger_id, cmd.RemoteStop(session.transaction_id)
        )
        status: CommandStatus = "accepted" if outcome.accepted else "rejected"
        return status, f"charger answered {outcome.status}", {
            "charger_id": session.charger_id, "session_id": session.id,
            "transaction_id": session.transaction_id, "charger_status": outcome.status,
        }  # fmt: skip

    async def _id_tags(
        self, payload: dict[str, Any], unit: Unit
    ) -> tuple[CommandStatus, str, dict[str, Any]]:
        entries: dict[IdTag, repo.IdTagEntry] = {}
        for item in payload.get("tags", []):
            try:
                status = AuthorizationStatus(item.get("status", "Accepted"))
            except ValueError as err:
                raise Rejected(f"unknown id tag status {item.get('status')!r}") from err
            tag = str(item.get("id_tag", ""))
            if not tag or len(tag) > 36:
                raise Rejected(f"bad id tag {tag!r}")
            entries[IdTag(tag)] = repo.IdTagEntry(
                status, repo.parse_iso(item.get("expires_at")), "central",
                _optional_id(item.get("vehicle_id")), _optional_id(item.get("driver_id")),
            )  # fmt: skip
        full = bool(payload.get("full"))
        numbered = _central_version(payload.get("version"))
        version = numbered or int(self.clock().timestamp())
        if numbered is not None:
            if numbered <= self.site.id_tags_version:
                # two lists made at once may come in either order: an older one must not
                # undo a newer one (a stale Accepted over a newer Blocked)
                detail = f"list {numbered} is older than list {self.site.id_tags_version}"
                return "accepted", detail, {"tags": 0, "version": numbered, "stale": True}
            self.site.id_tags_version = numbered
            set_meta(unit, repo.ID_TAGS_VERSION_KEY, str(numbered))
        count = self.site.update_id_tags(unit, entries, full)
        sent_list = local_list(version, full, entries)
        chargers = await self._send_local_lists(sent_list)
        return "accepted", "", {"tags": count, "version": version, "chargers": chargers}

    async def _send_local_lists(self, local_list: cmd.SendLocalList) -> dict[str, str]:
        """The list to every connected charger at once; each one's answer by charger id.

        The site's own cache is what authorizes; a charger that refuses or cannot hold a
        local list (``NotSupported``, ``VersionMismatch``, offline) keeps asking the edge.
        """
        answers: dict[str, str] = {}

        async def send(charger_id: ChargerId) -> None:
            try:
                outcome = await send_command(self.server, charger_id, local_list)
            except ChargerOffline:
                answers[charger_id] = "offline"
            except CommandTimeout:
                answers[charger_id] = "timeout"
            except (InvalidCommand, CallFailed) as err:
                answers[charger_id] = f"failed: {err}"[:120]
            else:
                answers[charger_id] = outcome.status

        async with asyncio.TaskGroup() as group:
            for charger_id in sorted(self.server.connections):
                group.create_task(send(charger_id), name=f"local-list-{charger_id}")
        return answers


def _optional_id(value: object) -> str | None:
    """A vehicle or driver id from central's list: text of 1 to 64 characters, or None."""
    if value is None or value == "":
        return None
    text = str(value)
    if len(text) > 64:
        raise Rejected(f"bad id {text[:20]!r}...")
    return text


def _central_version(given: object) -> int | None:
    """Central's list version, when it gave a positive number (else the site numbers the
    list for its chargers by the clock, and does not judge its order)."""
    if isinstance(given, int) and not isinstance(given, bool) and given > 0:
        return given
    if isinstance(given, str) and given.isdigit() and int(given) > 0:
        return int(given)
    return None
