"""The charging service's HTTP API: who may call what, and each answer.

``POST /charging/start`` and ``/stop`` become ``remote_start`` / ``remote_stop`` commands
for the site (:mod:`central.charging.commands`); the answer is 202 with the command id and
status ``pending``, or, when the site's ``command.result`` arrives within ``?wait=``
seconds, the site's answer (200): for a start, ``accepted`` only once the session has
begun (``result.session_id``), ``rejected`` or ``failed`` (with ``failure_code``) else. ``GET /charging/commands/{id}`` polls a command.
Sessions come priced (:mod:`central.charging.sessions`); rates are cached and sent to the
site (:mod:`central.charging.rates`); stations and id tags are read and written here
through :mod:`central.charging.store`; id tags through :mod:`central.charging.id_tags`;
a site's load management (its limit, its alerts, ``set_site_limit``) through
:mod:`central.charging.power`.
Drivers see and act only for their own vehicles (:mod:`central.auth`). Errors become
HTTP answers here only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from fastapi.responses import JSONResponse

from central.api_types import ChargerId, PathId, SiteId, SitePathId, VehicleId
from central.auth import Principal, check_vehicle, forbidden, require
from central.charging import store
from central.charging.commands import Commands
from central.charging.id_tags import IdTags, TagConflict
from central.charging.power import ALERTS_KIND, SitesPower, UntilPassed
from central.charging.rates import Rates
from central.charging.schema import (
    CommandAnswer,
    FirmwareRequest,
    IdTagAnswer,
    IdTagRequest,
    RateModel,
    SessionAnswer,
    SiteLimitRequest,
    SitePower,
    SiteRate,
    StartRequest,
    StationAnswer,
    StopRequest,
    VehicleStatus,
    station_answer,
)
from central.charging.sessions import Sessions
from central.context import ServiceContext
from central.infra.paging import Cursor, Limit, Page, page_of, parse_cursor
from central.sync.presence import presence

log = structlog.get_logger("central.charging")

Wait = Annotated[float, Query(ge=0, le=60, description="seconds to wait for the charger's answer")]
TagPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,36}$")]


def make_router(
    ctx: ServiceContext,
    commands: Commands,
    sessions: Sessions,
    rates: Rates,
    id_tags: IdTags,
    power: SitesPower,
) -> APIRouter:
    router = APIRouter(prefix="/charging", tags=["charging"])
    anyone = Depends(require("driver", "operator"))
    operator = Depends(require("operator"))
    listing = Depends(require("operator", "site"))

    def command_response(answer: CommandAnswer) -> JSONResponse:
        return JSONResponse(
            status_code=202 if answer.status == "pending" else 200,
            content=answer.model_dump(mode="json"),
        )

    async def answer_for(command_id: str, wait: float) -> CommandAnswer:
        """Wait for the charger's answer only while the site is reachable: for an
        offline site the command stays queued and the answer says so at once."""
        answer = await commands.answer(command_id, 0.0)
        assert answer is not None
        site = await presence(ctx.cache, answer.site_id)
        if site.online and answer.status == "pending" and wait > 0:
            answer = await commands.answer(command_id, wait) or answer
        answer.site_online = site.online
        if not site.online and answer.status == "pending":
            answer.detail = (
                f"{site.describe()}; the command is queued and reaches the site if it "
                f"comes back before {answer.expires_at.isoformat()}, else it expires"
            )
        return answer

    @router.post(
        "/start",
        status_code=202,
        response_model=CommandAnswer,
        summary="Start charging: a remote start for the site's charger, with a per-session "
        "app token; accepted once the session has begun",
        responses={
            200: {"model": CommandAnswer, "description": "the site answered in time"},
            403: {"description": "not the key's vehicle"},
            409: {"description": "charger offline or vehicle already charging"},
        },
    )
    async def start(
        body: StartRequest, wait: Wait = 0.0, principal: Principal = anyone
    ) -> JSONResponse:
        check_vehicle(principal, body.vehicle_id)
        try:
            command_id = await commands.start_charging(body, principal)
        except ValueError as err:
            raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
        return command_response(await answer_for(command_id, wait))

    @router.post(
        "/stop",
        status_code=202,
        response_model=CommandAnswer,
        summary="Stop charging: a remote stop for the vehicle's or session's charger",
        responses={
            200: {"model": CommandAnswer, "description": "the charger answered in time"},
            403: {"description": "not the key's vehicle or session"},
            404: {"description": "no active session"},
            422: {"description": "neither vehicle_id nor session_id"},
        },
    )
    async def stop(
        body: StopRequest, wait: Wait = 0.0, principal: Principal = anyone
    ) -> JSONResponse:
        if body.session_id is None and body.vehicle_id is not None:
            check_vehicle(principal, body.vehicle_id)
        try:
            command_id = await commands.stop_charging(body, principal)
        except ValueError as err:
            raise HTTPException(422, str(err)) from err
        except KeyError as err:
            raise HTTPException(status.HTTP_404_NOT_FOUND, err.args[0]) from err
        return command_response(await answer_for(command_id, wait))

    @router.post(
        "/firmware",
        status_code=202,
        response_model=CommandAnswer,
        summary="A firmware campaign on a site's chargers: the site's update_firmware "
        "command; its result names each charger's answer",
        responses={200: {"model": CommandAnswer, "description": "the site answered in time"}},
    )
    async def firmware(
        body: FirmwareRequest, wait: Wait = 0.0, principal: Principal = operator
    ) -> JSONResponse:
        return command_response(await answer_for(await commands.update_firmware(body), wait))

    @router.put(
        "/sites/{site_id}/power/limit",
        status_code=202,
        response_model=CommandAnswer,
        summary="A temporary limit for a site's load management (null: back to the "
        "configured one): the site's set_site_limit command; its result holds the limit "
        "in force",
        responses={
            200: {"model": CommandAnswer, "description": "the site answered in time"},
            422: {"description": "a limit out of range, or until not in the future"},
        },
    )
    async def put_site_limit(
        site_id: SitePathId, body: SiteLimitRequest, wait: Wait = 0.0, _p: Principal = operator
    ) -> JSONResponse:
        try:
            command_id = await power.set_limit(site_id, body)
        except UntilPassed as err:
            raise HTTPException(422, str(err)) from err
        return command_response(await answer_for(command_id, wait))

    @router.get(
        "/sites/{site_id}/power",
        response_model=SitePower,
        summary="A site's load management as it reported it: the site limit in force and "
        "the chargers that refused or ignored their limit, newest first (operators)",
        responses={400: {"description": "invalid cursor"}},
    )
    async def get_site_power(
        site_id: SitePathId, limit: Limit = 50, cursor: Cursor = None, _p: Principal = operator
    ) -> SitePower:
        start = parse_cursor(ALERTS_KIND, cursor, (datetime, int))
        return await power.document(site_id, limit, start)

    @router.get(
        "/commands/{command_id}",
        response_model=CommandAnswer,
        summary="A start or stop command's state (long-poll with ?wait=)",
        responses={
            202: {"model": CommandAnswer, "description": "still pending"},
            403: {"description": "a command of another user's vehicle"},
            404: {"description": "no such command"},
        },
    )
    async def get_command(
        command_id: PathId, wait: Wait = 0.0, principal: Principal = anyone
    ) -> JSONResponse:
        if await commands.answer(command_id, 0.0) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no command {command_id}")
        if principal.scope != "operator":
            check_vehicle(principal, await commands.vehicle(command_id))
        return command_response(await answer_for(command_id, wait))

    @router.get(
        "/status/{vehicle_id}",
        response_model=VehicleStatus,
        summary="A vehicle's current session (energy, cost so far) and pending commands",
        responses={403: {"description": "not the key's vehicle"}},
    )
    async def get_status(vehicle_id: PathId, principal: Principal = anyone) -> VehicleStatus:
        check_vehicle(principal, vehicle_id)
        return await sessions.vehicle_status(vehicle_id)

    @router.get(
        "/history/{vehicle_id}",
        response_model=Page[SessionAnswer],
        summary="A vehicle's finished sessions with energy and cost, newest first",
        responses={
            400: {"description": "invalid cursor"},
            403: {"description": "not the key's vehicle"},
        },
    )
    async def get_history(
        vehicle_id: PathId,
        limit: Limit = 100,
        cursor: Cursor = None,
        principal: Principal = anyone,
    ) -> Page[SessionAnswer]:
        check_vehicle(principal, vehicle_id)
        return await sessions.history(vehicle_id, limit, cursor)

    @router.get(
        "/sessions",
        response_model=Page[SessionAnswer],
        summary="Sessions of a site or a charger, newest first (operators; a site key: "
        "its own site)",
        responses={
            400: {"description": "invalid cursor"},
            403: {"description": "another site's sessions"},
        },
    )
    async def list_sessions(
        site_id: Annotated[SiteId | None, Query()] = None,
        charger_id: Annotated[ChargerId | None, Query()] = None,
        status_: Annotated[Literal["active", "completed"] | None, Query(alias="status")] = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        principal: Principal = listing,
    ) -> Page[SessionAnswer]:
        if principal.scope == "site":
            if site_id is None:
                site_id = principal.site_id
            if site_id is None or not principal.may_act_for_site(site_id):
                raise forbidden(f"the sessions of site {site_id}")
        return await sessions.page(
            limit, cursor, site_id=site_id, charger_id=charger_id, status=status_
        )

    @router.get(
        "/rates",
        response_model=Page[SiteRate],
        summary="Rates per site",
        responses={400: {"description": "invalid cursor"}},
    )
    async def get_rates(
        site_id: Annotated[SiteId | None, Query()] = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        _p: Principal = anyone,
    ) -> Page[SiteRate]:
        return await rates.page(site_id, limit, cursor)

    @router.put(
        "/rates/{site_id}",
        response_model=SiteRate,
        summary="Set a site's rates (operators); the site is sent the new rates",
    )
    async def put_rates(site_id: SitePathId, body: RateModel, _p: Principal = operator) -> SiteRate:
        return await rates.put(site_id, body)

    @router.get(
        "/stations",
        response_model=Page[StationAnswer],
        summary="Chargers and their last known status",
        responses={400: {"description": "invalid cursor"}},
    )
    async def get_stations(
        site_id: Annotated[SiteId | None, Query()] = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        _p: Principal = anyone,
    ) -> Page[StationAnswer]:
        start = parse_cursor("stations", cursor, (str, str))
        async with ctx.engine.connect() as conn:
            rows = await store.stations(conn, site_id, limit, start)
        items = [station_answer(r) for r in rows[:limit]]
        return page_of(items, rows, limit, "stations", lambda r: (r.site_id, r.charger_id))

    @router.put(
        "/id-tags/{id_tag}",
        response_model=IdTagAnswer,
        summary="Register an RFID card to a vehicle (operators: any, with its driver; a "
        "driver: for its own vehicles, as itself); every site is sent it",
        responses={
            403: {"description": "not the key's vehicle, or another driver"},
            409: {"description": "the tag is another vehicle's or driver's, or an app token"},
        },
    )
    async def put_tag(
        id_tag: TagPath, body: IdTagRequest, principal: Principal = anyone
    ) -> IdTagAnswer:
        try:
            return await id_tags.register(principal, id_tag, body)
        except TagConflict as err:
            raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err

    @router.delete(
        "/id-tags/{id_tag}",
        status_code=204,
        summary="Unregister an id tag (operators: any; a driver: its own vehicles' cards); "
        "every site is told",
        responses={
            403: {"description": "not a card of the key's vehicles"},
            404: {"description": "no such tag"},
        },
    )
    async def delete_tag(id_tag: TagPath, principal: Principal = anyone) -> Response:
        try:
            await id_tags.remove(principal, id_tag)
        except KeyError as err:
            raise HTTPException(status.HTTP_404_NOT_FOUND, err.args[0]) from err
        return Response(status_code=204)

    @router.get(
        "/id-tags",
        response_model=Page[IdTagAnswer],
        summary="Registered id tags, cards and app tokens (operators: all; a driver: its "
        "own vehicles')",
        responses={400: {"description": "invalid cursor"}},
    )
    async def list_tags(
        vehicle_id: Annotated[VehicleId | None, Query()] = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        principal: Principal = anyone,
    ) -> Page[IdTagAnswer]:
        return await id_tags.page(principal, vehicle_id, limit, cursor)

    return router
