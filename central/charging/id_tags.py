"""The drivers' id tokens: who may register which, and how every site learns them.

An RFID card is registered to one vehicle, with its driver where known: operators
register any card for any vehicle and driver; a driver only for its own vehicles, as
itself (:class:`~central.auth.Principal`). App tokens are made by a remote start
(:mod:`central.charging.tokens`, :mod:`central.charging.commands`) and travel with it.

Every site must accept the same cards, so every change goes to every site charging knows
as an ``update_id_tags`` command (``full: false``, the changed entries; a removed card
as ``Invalid``). A site charging sees for the first time (:meth:`IdTags.site_seen`, from
any of its events) gets the ``full`` list once: every card and its own live app tokens.
The list's version is the id of the change in ``charging_id_tag_changes``, so it only
grows, whichever replica sends it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

import structlog

from central.auth import Principal, check_vehicle, forbidden
from central.charging import store
from central.charging.commands import Commands
from central.charging.schema import IdTagAnswer, IdTagRequest, tag_answer
from central.charging.tokens import tag_entry
from central.context import ServiceContext
from central.infra.paging import Page, page_of, parse_cursor

log = structlog.get_logger("central.charging")

# an id tag list matters until a later one replaces it: a site offline for days still
# gets it when back
LIST_TTL: Final = timedelta(days=7)


class TagConflict(ValueError):
    """The tag is another vehicle's or driver's, or an app token."""


class IdTags:
    def __init__(self, ctx: ServiceContext, commands: Commands) -> None:
        self._ctx = ctx
        self._commands = commands
        self._known_sites: set[str] = set()  # sites this process knows got the full list

    async def register(self, principal: Principal, id_tag: str, body: IdTagRequest) -> IdTagAnswer:
        """Register or update an RFID card; :class:`TagConflict` when it is not the
        caller's to change, 403 (``HTTPException``) for another's vehicle or driver."""
        check_vehicle(principal, body.vehicle_id)
        driver_id = body.driver_id
        if principal.scope != "operator":
            if driver_id not in (None, principal.user_id):
                raise forbidden(f"user {driver_id}")
            driver_id = principal.user_id
        now = self._ctx.clock()
        values: dict[str, Any] = {
            "driver_id": driver_id,
            "status": body.status,
            "expires_at": body.expires_at,
        }
        async with self._ctx.engine.begin() as conn:
            row = await store.tag(conn, id_tag)
            if row is not None:
                self._check_may_change(principal, row, body.vehicle_id)
            if row is not None and all(getattr(row, k) == v for k, v in values.items()):
                return tag_answer(row)  # nothing changed: nothing to tell the sites
            if row is None:
                await store.add_tag(
                    conn, id_tag, body.vehicle_id, created_at=now, kind="rfid", **values
                )
            else:
                await store.update_tag(conn, id_tag, **values)
            version = await store.record_tag_change(conn, id_tag, "put", now)
            row = await store.tag(conn, id_tag)
            sites = await store.known_sites(conn)
        log.info(
            "charging.id_tag.registered", id_tag=id_tag, vehicle=body.vehicle_id, driver=driver_id
        )
        await self._push(sites, version, [tag_entry(row)])
        return tag_answer(row)

    @staticmethod
    def _check_may_change(principal: Principal, row: Any, vehicle_id: str) -> None:
        if row.kind != "rfid":
            raise TagConflict(f"id tag {row.id_tag} is an app token")
        if row.vehicle_id != vehicle_id:
            raise TagConflict(f"id tag {row.id_tag} is registered to another vehicle")
        if principal.scope != "operator" and row.driver_id not in (None, principal.user_id):
            raise TagConflict(f"id tag {row.id_tag} is registered to another driver")

    async def remove(self, principal: Principal, id_tag: str) -> None:
        """Unregister a tag: :class:`KeyError` for none (operators); a driver may remove
        only its own vehicles' cards, and is told 403 for any other (or none)."""
        async with self._ctx.engine.begin() as conn:
            row = await store.tag(conn, id_tag)
            if principal.scope != "operator" and (
                row is None or row.kind != "rfid" or not principal.may_see_vehicle(row.vehicle_id)
            ):
                raise forbidden(f"id tag {id_tag}")
            if row is None:
                raise KeyError(f"no id tag {id_tag}")
            await store.remove_tag(conn, id_tag)
            version = await store.record_tag_change(conn, id_tag, "delete", self._ctx.clock())
            sites = await store.known_sites(conn)
        log.info("charging.id_tag.removed", id_tag=id_tag, vehicle=row.vehicle_id)
        await self._push(sites, version, [tag_entry(row, status="Invalid")])

    async def page(
        self, principal: Principal, vehicle_id: str | None, limit: int, cursor: str | None
    ) -> Page[IdTagAnswer]:
        """Tags by id: an operator's of every vehicle (or one); a driver's of its own."""
        vehicles: frozenset[str] | None = None
        if vehicle_id is not None:
            check_vehicle(principal, vehicle_id)
            vehicles = frozenset({vehicle_id})
        elif principal.scope != "operator":
            vehicles = principal.vehicles
        start = parse_cursor("id-tags", cursor, (str,))
        async with self._ctx.engine.connect() as conn:
            rows = await store.tags(conn, vehicles, limit, start)
        items = [tag_answer(r) for r in rows[:limit]]
        return page_of(items, rows, limit, "id-tags", lambda r: (r.id_tag,))

    async def site_seen(self, site_id: str) -> None:
        """A site sent an event: the first time charging sees it, it gets the full list
        (unless there is nothing for it to accept)."""
        if site_id in self._known_sites:
            return
        now = self._ctx.clock()
        async with self._ctx.engine.begin() as conn:
            first = await store.add_site(conn, site_id, now)
            rows = await store.site_tags(conn, site_id, now) if first else []
            version = await store.record_tag_change(conn, "*", "full", now) if rows else 0
        if rows:
            await self._send(site_id, version, [tag_entry(r) for r in rows], full=True)
        self._known_sites.add(site_id)

    async def _push(self, sites: list[str], version: int, entries: list[dict[str, Any]]) -> None:
        for site_id in sites:
            await self._send(site_id, version, entries, full=False)

    async def _send(
        self, site_id: str, version: int, entries: list[dict[str, Any]], *, full: bool
    ) -> None:
        await self._commands.issue(
            site_id,
            "update_id_tags",
            {"version": version, "full": full, "tags": entries},
            charger_id=None,
            vehicle_id=None,
            ttl_s=LIST_TTL.total_seconds(),
        )
