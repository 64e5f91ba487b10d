"""The edge's local HTTP API: site state for technicians and tools, and charger commands.

Read side: chargers with their EVSEs, sessions (active and recent, energy in Wh), the
site's and each charger's events, ``/healthz`` and Prometheus ``/metrics``. Every list
pages (``limit``, ``cursor``, the next page in a ``Link`` header: :mod:`edge.core.paging`).
Commands: ``POST /api/chargers/{id}/<command>`` answers with the charger's own answer,
504 if it did not answer in time, 409 if it is not connected. docs/local-api.md has it all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, Field

from common.api_docs import docs_router
from common.timestamps import format_timestamp
from edge.api.commands import command_answer, known_charger
from edge.api.json_io import SafeJSONResponse, StrictJsonBodies, validation_error
from edge.api.paging import Cursor, Limit, in_memory, page_of, serve_page
from edge.core import commands as cmd
from edge.core.documents import charger_document, session_document
from edge.core.model import Session
from edge.core.paging import MAX_LIMIT, Key
from edge.ocpp.server import OcppServer
from edge.services.site import Site
from edge.storage import paged_reads
from edge.storage import site_sql as repo

# --- views ---------------------------------------------------------------------------


# --- command bodies ------------------------------------------------------------------


class RemoteStartBody(BaseModel):
    id_tag: str = Field(min_length=1, max_length=20)
    evse_id: int | None = Field(default=None, ge=1)


class RemoteStopBody(BaseModel):
    transaction_id: str | None = Field(default=None, min_length=1, max_length=36)
    session_id: str | None = None


class ResetBody(BaseModel):
    type: Literal["soft", "hard"] = "soft"


class UnlockBody(BaseModel):
    evse_id: int = Field(default=1, ge=1)
    connector_id: int = Field(default=1, ge=1)


class AvailabilityBody(BaseModel):
    operative: bool
    evse_id: int = Field(default=0, ge=0)


class TriggerBody(BaseModel):
    message: str = Field(min_length=1, max_length=64)
    evse_id: int | None = Field(default=None, ge=0)
    extended: bool = False  # 1.6: ExtendedTriggerMessage (Security Whitepaper)


class GetConfigurationBody(BaseModel):
    keys: list[str] = Field(default_factory=list, max_length=100)


class ChangeConfigurationBody(BaseModel):
    key: str = Field(min_length=1, max_length=50)
    value: str = Field(max_length=500)


class VariableBody(BaseModel):
    component: str = Field(min_length=1, max_length=50)
    variable: str = Field(min_length=1, max_length=50)
    evse_id: int | None = Field(default=None, ge=0)
    instance: str | None = None
    value: str | None = Field(default=None, max_length=1000)


class VariablesBody(BaseModel):
    variables: list[VariableBody] = Field(min_length=1, max_length=50)


class DataTransferBody(BaseModel):
    vendor_id: str = Field(min_length=1, max_length=255)
    message_id: str | None = Field(default=None, min_length=1, max_length=50)
    data: str | None = Field(default=None, max_length=10_000)


class TransactionStatusBody(BaseModel):
    transaction_id: str | None = Field(default=None, min_length=1, max_length=36)


def _session_key(session: Session) -> Key:
    return (format_timestamp(session.started_at), session.id)


def _refs(body: VariablesBody) -> tuple[cmd.VariableRef, ...]:
    return tuple(
        cmd.VariableRef(v.component, v.variable, v.evse_id, v.instance, v.value)
        for v in body.variables
    )


HealthSource = Callable[[], dict[str, Any]]


def create_app(
    site: Site,
    server: OcppServer,
    registry: CollectorRegistry,
    extra: list[APIRouter] | None = None,
    health: dict[str, HealthSource] | None = None,
) -> FastAPI:
    app = FastAPI(
        title=f"evpark edge — site {site.config.site.id}",
        description="Local API of one site's edge daemon.",
        version="0.1.0",
        default_response_class=SafeJSONResponse,
        docs_url=None,  # served from the package below: a site may have no internet
        redoc_url=None,
    )
    app.include_router(docs_router(app.openapi_url or "/openapi.json", app.title))
    app.add_middleware(StrictJsonBodies)
    app.add_exception_handler(RequestValidationError, validation_error)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """200 while the site can store what chargers send; 503 (for systemd, a load
        balancer, monitoring) when the SQLite writer is dead or a write waits too long."""
        store = site.store.health()
        try:
            async with asyncio.timeout(5):
                await site.store.read(lambda c: c.execute("SELECT 1").fetchone())
        except TimeoutError:
            store = {**store, "ok": False, "reader": "stuck"}
        answer: dict[str, Any] = {
            "status": "ok" if store["ok"] else "unavailable",
            "site": site.config.site.id,
            "chargers_connected": len(server.connections),
            "active_sessions": len(site.active),
            "store": store,
        }
        for name, source in (health or {}).items():
            answer[name] = source()
        return JSONResponse(answer, status_code=200 if store["ok"] else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/chargers")
    async def chargers(
        request: Request, response: Response, limit: Limit = None, cursor: Cursor = None
    ) -> list[dict[str, Any]]:
        page = page_of("chargers", limit, cursor, default=MAX_LIMIT)
        ordered = site.charger_documents()
        found = in_memory(ordered, page, lambda c: (c["id"],))
        return serve_page(request, response, "chargers", page, found, lambda c: (c["id"],))

    @app.get("/api/chargers/{charger_id}")
    async def charger(
        charger_id: str, events: Annotated[int, Query(ge=0, le=500)] = 50
    ) -> dict[str, Any]:
        found = known_charger(site, charger_id)
        view = charger_document(found, site.active.of_charger(found.id))
        view["events"] = await site.store.read(lambda c: repo.charger_events(c, charger_id, events))
        connection = server.connections.get(found.id)
        view["messages"] = connection.tail_view(events) if connection else []
        return view

    @app.get("/api/chargers/{charger_id}/events")
    async def charger_event_list(
        charger_id: str,
        request: Request,
        response: Response,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> list[dict[str, Any]]:
        known_charger(site, charger_id)
        page = page_of("charger-events", limit, cursor, default=50, types=(int,))
        rows = await site.store.read(
            lambda c: paged_reads.charger_events(c, charger_id, page.limit, page.after)
        )
        return serve_page(request, response, "charger-events", page, rows, lambda e: (e["id"],))

    @app.get("/api/sessions")
    async def sessions(
        request: Request,
        response: Response,
        status: Literal["active", "completed", "inferred_stopped"] | None = None,
        charger: str | None = None,
        id_tag: str | None = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> list[dict[str, Any]]:
        page = page_of("sessions", limit, cursor, default=50, types=(str, str))
        found: list[Session]
        if status == "active":
            active = [
                s
                for s in site.active_sessions()
                if (charger is None or s.charger_id == charger)
                and (id_tag is None or s.id_tag == id_tag)
            ]
            active.sort(key=_session_key, reverse=True)
            found = in_memory(active, page, _session_key, descending=True)
        else:
            found = await site.store.read(
                lambda c: paged_reads.sessions(
                    c,
                    status=status,
                    charger_id=charger,
                    id_tag=id_tag,
                    limit=page.limit,
                    after=page.after,
                )
            )
        shown = serve_page(request, response, "sessions", page, found, _session_key)
        live = {s.id: s for s in site.active_sessions()}
        return [session_document(live.get(s.id, s)) for s in shown]

    @app.get("/api/events")
    async def site_event_list(
        request: Request,
        response: Response,
        kind: Annotated[str | None, Query(pattern=r"^[a-z][a-z_.]{0,63}$")] = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> list[dict[str, Any]]:
        page = page_of("events", limit, cursor, default=100, types=(int,))
        rows = await site.store.read(
            lambda c: paged_reads.site_events(c, kind, page.limit, page.after)
        )
        return serve_page(request, response, "events", page, rows, lambda e: (e["sequence"],))

    @app.get("/api/sessions/{session_id}")
    async def session(session_id: str) -> dict[str, Any]:
        live = site.active_session(session_id)
        found = live or await site.store.read(lambda c: repo.get_session(c, session_id))
        if found is None:
            raise HTTPException(404, f"no session {session_id!r}")
        view = session_document(found)
        view["meter_values"] = await site.store.read(lambda c: repo.session_meter_values(c, found))
        return view

    async def run(charger_id: str, command: cmd.Command) -> dict[str, Any]:
        return await command_answer(site, server, charger_id, command)

    @app.post("/api/chargers/{charger_id}/remote-start")
    async def remote_start(charger_id: str, body: RemoteStartBody) -> dict[str, Any]:
        return await run(charger_id, cmd.RemoteStart(body.id_tag, body.evse_id))

    @app.post("/api/chargers/{charger_id}/remote-stop")
    async def remote_stop(charger_id: str, body: RemoteStopBody) -> dict[str, Any]:
        transaction_id = body.transaction_id
        if transaction_id is None:
            mine = [s for s in site.active_sessions() if s.charger_id == charger_id]
            if body.session_id is not None:
                mine = [s for s in mine if s.id == body.session_id]
            if len(mine) != 1:
                raise HTTPException(
                    422, "name the transaction_id or session_id of an active session"
                )
            transaction_id = mine[0].transaction_id
        return await run(charger_id, cmd.RemoteStop(transaction_id))

    @app.post("/api/chargers/{charger_id}/reset")
    async def reset(charger_id: str, body: ResetBody) -> dict[str, Any]:
        return await run(charger_id, cmd.Reset(hard=body.type == "hard"))

    @app.post("/api/chargers/{charger_id}/unlock")
    async def unlock(charger_id: str, body: UnlockBody) -> dict[str, Any]:
        return await run(charger_id, cmd.Unlock(body.evse_id, body.connector_id))

    @app.post("/api/chargers/{charger_id}/availability")
    async def availability(charger_id: str, body: AvailabilityBody) -> dict[str, Any]:
        return await run(charger_id, cmd.ChangeAvailability(body.operative, body.evse_id))

    @app.post("/api/chargers/{charger_id}/trigger")
    async def trigger(charger_id: str, body: TriggerBody) -> dict[str, Any]:
        return await run(charger_id, cmd.TriggerMessage(body.message, body.evse_id, body.extended))

    @app.post("/api/chargers/{charger_id}/local-list-version")
    async def local_list_version(charger_id: str) -> dict[str, Any]:
        return await run(charger_id, cmd.GetLocalListVersion())

    @app.post("/api/chargers/{charger_id}/clear-cache")
    async def clear_cache(charger_id: str) -> dict[str, Any]:
        return await run(charger_id, cmd.ClearCache())

    @app.post("/api/chargers/{charger_id}/data-transfer")
    async def data_transfer(charger_id: str, body: DataTransferBody) -> dict[str, Any]:
        return await run(charger_id, cmd.DataTransfer(body.vendor_id, body.message_id, body.data))

    @app.post("/api/chargers/{charger_id}/transaction-status")
    async def transaction_status(charger_id: str, body: TransactionStatusBody) -> dict[str, Any]:
        return await run(charger_id, cmd.GetTransactionStatus(body.transaction_id))

    @app.post("/api/chargers/{charger_id}/get-configuration")
    async def get_configuration(charger_id: str, body: GetConfigurationBody) -> dict[str, Any]:
        return await run(charger_id, cmd.GetConfiguration(tuple(body.keys)))

    @app.post("/api/chargers/{charger_id}/change-configuration")
    async def change_configuration(
        charger_id: str, body: ChangeConfigurationBody
    ) -> dict[str, Any]:
        return await run(charger_id, cmd.ChangeConfiguration(body.key, body.value))

    @app.post("/api/chargers/{charger_id}/get-variables")
    async def get_variables(charger_id: str, body: VariablesBody) -> dict[str, Any]:
        return await run(charger_id, cmd.GetVariables(_refs(body)))

    @app.post("/api/chargers/{charger_id}/set-variables")
    async def set_variables(charger_id: str, body: VariablesBody) -> dict[str, Any]:
        if any(v.value is None for v in body.variables):
            raise HTTPException(422, "every variable needs a value to set")
        return await run(charger_id, cmd.SetVariables(_refs(body)))

    for router in extra or []:
        app.include_router(router)
    return app
