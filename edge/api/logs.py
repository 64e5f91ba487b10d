"""Local API of charger logs: ask a charger for its diagnostics or security log, list the
requests with their status and files, download a file (docs/diagnostics.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from edge.api.commands import answer_of, known_charger
from edge.api.paging import Cursor, Limit, page_of, serve_page
from edge.core import logs
from edge.ocpp.server import OcppServer
from edge.services.logs import NoPublicUrl
from edge.services.site import Site

log = structlog.get_logger(__name__)


class GetDiagnosticsBody(BaseModel):
    log_type: logs.LogType = "DiagnosticsLog"
    since: datetime | None = None
    until: datetime | None = None
    retries: int | None = Field(default=None, ge=0, le=10)
    retry_interval: int | None = Field(default=None, ge=0, le=3600)


def logs_router(site: Site, server: OcppServer) -> APIRouter:
    router = APIRouter(prefix="/api/chargers/{charger_id}", tags=["logs"])
    requests = site.logs

    @router.post("/get-diagnostics")
    async def get_diagnostics(charger_id: str, body: GetDiagnosticsBody) -> dict[str, Any]:
        charger = known_charger(site, charger_id).id
        if body.since and body.until and body.since > body.until:
            raise HTTPException(422, "since is after until")
        try:
            request, command = await requests.start(
                charger, body.log_type, body.since, body.until, body.retries, body.retry_interval
            )
        except NoPublicUrl as err:
            raise HTTPException(422, str(err)) from err
        try:
            outcome = await answer_of(server, charger_id, command)
        except HTTPException as err:
            if err.status_code != 504:  # not sent, or refused: no upload will come
                await requests.answered(request, logs.NOT_SENT, None)
            raise
        file_name = outcome.detail.get("file_name")
        await requests.answered(request, outcome.status, file_name)
        log.info("logs.requested", charger=charger_id, request=request.id,
                 log_type=body.log_type, answer=outcome.status)  # fmt: skip
        return {"charger_id": charger_id, "request_id": request.id, "status": outcome.status,
                "file_name": file_name, "response": outcome.detail}  # fmt: skip

    @router.get("/logs")
    async def log_requests(
        charger_id: str,
        request: Request,
        response: Response,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> list[dict[str, object]]:
        known_charger(site, charger_id)
        page = page_of("logs", limit, cursor, default=50, types=(int,))
        found = await requests.of_charger(charger_id, page.limit, page.after)
        shown = serve_page(request, response, "logs", page, found, lambda r: (r.id,))
        now = site.clock()
        return [logs.document(r, now) for r in shown]

    @router.get("/logs/{request_id}/file")
    async def log_file(charger_id: str, request_id: int) -> FileResponse:
        known_charger(site, charger_id)
        found = await requests.get(charger_id, request_id)  # another charger's: not found
        if found is None or not found.files:
            raise HTTPException(404, f"no file for request {request_id} of {charger_id!r}")
        stored = found.files[-1]
        path = (requests.data_dir / stored.path).resolve()
        if not path.is_relative_to(requests.uploads_dir.resolve()) or not path.is_file():
            log.error("logs.file.missing", charger=charger_id, request=request_id)
            raise HTTPException(404, f"the file of request {request_id} is gone")
        return FileResponse(
            path,
            media_type="application/octet-stream",
            filename=stored.name,
            headers={"X-Content-Type-Options": "nosniff"},
        )

    return router
