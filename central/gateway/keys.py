"""API keys: ``evp_<id>_<secret>``; only a SHA-256 of the secret is stored.

The secret is 32 random bytes, so a fast hash is enough (no password stretching needed)
and keeps authentication cheap on every request. Verified keys are remembered in the
process for ``cache_s`` seconds; a revocation, or a change of a user's vehicles, takes
effect within that time. Keys found invalid are remembered too (by a hash of the whole
key), so one bad key repeated costs no database lookup.

A driver key belongs to a user (``--user``); the user's vehicles (the registry in
``gateway_vehicles``, one owner per vehicle) are the vehicles that key may see and act
for.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from central.api_types import ID_PATTERN
from central.auth import SCOPES, Principal, Scope
from central.gateway.tables import api_keys, vehicles
from central.infra.paging import Key, after
from contract.envelope import valid_site_id

PREFIX = "evp_"
# the vehicles travel in one header to the services: keep it well under header limits
MAX_VEHICLES_PER_USER = 100
INVALID_CACHE_MAX = 10_000
_ID = re.compile(ID_PATTERN)
# user ids as the notification service names users (an email address will do)
_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$")


class InvalidKeyRequest(ValueError):
    """A key or a vehicle cannot be registered as asked (bad scope, site, user, vehicle)."""


@dataclass(frozen=True)
class KeyInfo:
    id: str
    scope: Scope
    site_id: str | None
    user_id: str | None
    name: str
    created_at: datetime
    revoked_at: datetime | None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(key: str) -> tuple[str, str] | None:
    if not key.startswith(PREFIX):
        return None
    rest = key[len(PREFIX) :]
    key_id, sep, secret = rest.partition("_")
    if not sep or not key_id or not secret or len(key_id) > 32:
        return None
    return key_id, secret


def _check_ids(what: str, ids: Iterable[str]) -> list[str]:
    pattern = _USER if what == "user" else _ID
    out = []
    for value in ids:
        if not pattern.fullmatch(value):
            raise InvalidKeyRequest(f"{what} {value!r} is not a valid id (letters, digits, _.:-)")
        out.append(value)
    return out


class KeyStore:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Callable[[], datetime],
        cache_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._cache_s = cache_s
        self._monotonic = monotonic
        self._verified: dict[str, tuple[str, Principal, float]] = {}
        self._invalid: dict[str, float] = {}

    async def create(
        self,
        scope: str,
        site_id: str | None = None,
        name: str = "",
        *,
        user_id: str | None = None,
        vehicle_ids: Iterable[str] = (),
    ) -> str:
        """A new key; for a driver key, ``vehicle_ids`` are registered to ``user_id`` too."""
        if scope not in SCOPES:
            raise InvalidKeyRequest(f"scope must be one of {', '.join(SCOPES)}")
        if scope == "site":
            if not site_id or not valid_site_id(site_id):
                raise InvalidKeyRequest("a site key needs --site with a valid site id")
        elif site_id is not None:
            raise InvalidKeyRequest("only site keys belong to a site")
        wanted = _check_ids("vehicle", vehicle_ids)
        if scope == "driver":
            if not user_id:
                raise InvalidKeyRequest("a driver key needs --user (the user it belongs to)")
            _check_ids("user", [user_id])
        elif user_id is not None or wanted:
            raise InvalidKeyRequest("only driver keys belong to a user and vehicles")
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        async with self._engine.begin() as conn:
            if user_id is not None:
                await self._register(conn, user_id, wanted)
            await conn.execute(
                insert(api_keys).values(
                    id=key_id,
                    secret_hash=_hash(secret),
                    scope=scope,
                    site_id=site_id,
                    user_id=user_id,
                    name=name,
                    created_at=self._clock(),
                )
            )
        return f"{PREFIX}{key_id}_{secret}"

    # ---- the vehicle registry ---------------------------------------------------------
    async def add_vehicles(self, user_id: str, vehicle_ids: Iterable[str]) -> None:
        _check_ids("user", [user_id])
        wanted = _check_ids("vehicle", vehicle_ids)
        async with self._engine.begin() as conn:
            await self._register(conn, user_id, wanted)

    async def _register(self, conn: AsyncConnection, user_id: str, wanted: list[str]) -> None:
        if not wanted:
            return
        rows = (
            await conn.execute(
                select(vehicles.c.vehicle_id, vehicles.c.user_id).where(
                    vehicles.c.vehicle_id.in_(wanted)
                )
            )
        ).all()
        taken = sorted(r.vehicle_id for r in rows if r.user_id != user_id)
        if taken:
            raise InvalidKeyRequest(f"vehicle {taken[0]} belongs to another user")
        held = {r.vehicle_id for r in rows}
        new = sorted(set(wanted) - held)
        count = len(await self._vehicles_of(conn, user_id))
        if count + len(new) > MAX_VEHICLES_PER_USER:
            raise InvalidKeyRequest(f"a user holds at most {MAX_VEHICLES_PER_USER} vehicles")
        if new:
            now = self._clock()
            await conn.execute(
                insert(vehicles),
                [{"vehicle_id": v, "user_id": user_id, "created_at": now} for v in new],
            )

    async def remove_vehicle(self, user_id: str, vehicle_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(vehicles).where(
                    vehicles.c.user_id == user_id, vehicles.c.vehicle_id == vehicle_id
                )
            )
        return bool(result.rowcount)

    async def vehicles_of(self, user_id: str) -> list[str]:
        async with self._engine.connect() as conn:
            return sorted(await self._vehicles_of(conn, user_id))

    async def _vehicles_of(self, conn: AsyncConnection, user_id: str) -> set[str]:
        rows = await conn.execute(
            select(vehicles.c.vehicle_id).where(vehicles.c.user_id == user_id)
        )
        return {r.vehicle_id for r in rows}

    # ---- keys -------------------------------------------------------------------------
    async def revoke(self, key_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=self._clock())
            )
        self._verified.pop(key_id, None)
        return bool(result.rowcount)

    async def list(self, limit: int | None = None, after_key: Key | None = None) -> list[KeyInfo]:
        """Keys by creation, oldest first; ``limit``/``after_key`` page through them
        (the key of a page's last item: ``(created_at, id)``)."""
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        if after_key is not None:
            query = query.where(
                after([api_keys.c.created_at, api_keys.c.id], after_key, descending=False)
            )
        if limit is not None:
            query = query.limit(limit)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            KeyInfo(r.id, r.scope, r.site_id, r.user_id, r.name, r.created_at, r.revoked_at)
            for r in rows
        ]

    def cached(self, key: str) -> Principal | None:
        """The principal of a key verified recently, without any database lookup."""
        parsed = parse_key(key)
        if parsed is None:
            return None
        remembered = self._verified.get(parsed[0])
        if remembered is None or remembered[2] <= self._monotonic():
            return None
        return remembered[1] if hmac.compare_digest(remembered[0], _hash(parsed[1])) else None

    async def verify(self, key: str) -> Principal | None:
        parsed = parse_key(key)
        if parsed is None:
            return None
        key_id, secret = parsed
        digest = _hash(secret)
        now = self._monotonic()
        remembered = self._verified.get(key_id)
        if remembered is not None and remembered[2] > now:
            return remembered[1] if hmac.compare_digest(remembered[0], digest) else None
        whole = _hash(key)
        if self._invalid.get(whole, 0.0) > now:
            return None
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                )
            ).first()
            owned: set[str] = set()
            if row is not None and row.user_id is not None:
                owned = await self._vehicles_of(conn, row.user_id)
        if row is None or not hmac.compare_digest(row.secret_hash, digest):
            if len(self._invalid) >= INVALID_CACHE_MAX:
                self._invalid = {k: t for k, t in self._invalid.items() if t > now}
                if len(self._invalid) >= INVALID_CACHE_MAX:
                    self._invalid.clear()
            self._invalid[whole] = now + self._cache_s
            return None
        principal = Principal(
            key_id=key_id,
            scope=row.scope,
            site_id=row.site_id,
            user_id=row.user_id,
            vehicles=frozenset(owned),
        )
        self._verified[key_id] = (row.secret_hash, principal, now + self._cache_s)
        return principal
