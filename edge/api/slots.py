"""Local HTTP API of the slots: state, summary, visits, and a technician's changes."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from edge.api.paging import Cursor, Limit, in_memory, page_of, serve_page
from edge.core.ids import SlotId, uuid7
from edge.core.paging import MAX_LIMIT
from edge.core.slots.documents import slot_document, summary_document
from edge.core.slots.model import SlotView
from edge.services.slots import SlotService
from edge.storage import paged_reads


class OutOfServiceBody(BaseModel):
    out_of_service: bool
    reason: str = Field(default="", max_length=200)


class ReservationBody(BaseModel):
    reservation_id: str | None = Field(default=None, min_length=1, max_length=64)
    until: datetime | None = None


def slots_router(service: SlotService) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["slots"])

    def slot_json(view: SlotView) -> dict[str, object]:
        return slot_document(service.config.site.id, view)

    def model_view(slot_id: str) -> SlotView:
        assert service.model is not None
        if SlotId(slot_id) not in service.model.state.slots:
            raise HTTPException(404, f"no slot {slot_id!r}")
        return service.model.view(SlotId(slot_id))

    @router.get("/slots")
    async def slots(
        request: Request, response: Response, limit: Limit = None, cursor: Cursor = None
    ) -> list[dict[str, object]]:
        assert service.model is not None
        page = page_of("slots", limit, cursor, default=MAX_LIMIT)
        ordered = sorted(service.model.views(), key=lambda v: str(v.slot_id))
        found = in_memory(ordered, page, lambda v: (str(v.slot_id),))
        shown = serve_page(request, response, "slots", page, found, lambda v: (str(v.slot_id),))
        return [slot_json(v) for v in shown]

    @router.get("/slots/{slot_id}")
    async def slot(slot_id: str) -> dict[str, object]:
        return slot_json(model_view(slot_id))

    @router.get("/site/summary")
    async def site_summary() -> dict[str, object]:
        assert service.model is not None
        return summary_document(service.config.site.id, service.model.summary(), service.clock())

    @router.get("/visits")
    async def visit_list(
        request: Request,
        response: Response,
        slot: str | None = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> list[dict[str, object]]:
        page = page_of("visits", limit, cursor, default=50, types=(str, str))
        rows = await service.store.read(
            lambda c: paged_reads.visits(c, slot, page.limit, page.after)
        )
        return serve_page(
            request, response, "visits", page, rows,
            lambda v: (str(v["arrived_at"]), str(v["visit_id"])),
        )  # fmt: skip

    @router.post("/slots/{slot_id}/out-of-service")
    async def out_of_service(slot_id: str, body: OutOfServiceBody) -> dict[str, object]:
        model_view(slot_id)
        await service.set_out_of_service(SlotId(slot_id), body.out_of_service, body.reason)
        return slot_json(model_view(slot_id))

    @router.post("/slots/{slot_id}/reservation")
    async def reserve(slot_id: str, body: ReservationBody) -> dict[str, object]:
        view = model_view(slot_id)
        if body.until is not None and body.until.tzinfo is None:
            raise HTTPException(422, "until needs a UTC offset (RFC 3339)")
        if view.reservation_id is not None and view.reservation_id != body.reservation_id:
            raise HTTPException(409, f"slot {slot_id!r} is already reserved")
        reservation_id = body.reservation_id or uuid7()
        await service.reserve(SlotId(slot_id), reservation_id, body.until)
        return slot_json(model_view(slot_id))

    @router.delete("/slots/{slot_id}/reservation")
    async def cancel(slot_id: str) -> dict[str, object]:
        view = model_view(slot_id)
        if view.reservation_id is None:
            raise HTTPException(404, f"slot {slot_id!r} has no reservation")
        await service.cancel_reservation(SlotId(slot_id), view.reservation_id)
        return slot_json(model_view(slot_id))

    return router
