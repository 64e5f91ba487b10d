"""API keys: ``evp_<id>_<secret>``; only a SHA-256 of the secret is stored.

The secret is 32 random bytes, so a fast hash is enough (no password stretching needed)
and keeps authentication cheap on every request. Verified keys are remembered in the
process for ``cache_s`` seconds; a revocation takes effect within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from central.auth import SCOPES, Principal, Scope
from central.gateway.tables import api_keys
from central.wire import valid_site_id

PREFIX = "evp_"


class InvalidKeyRequest(ValueError):
    """A key cannot be created as asked (bad scope or site)."""


@dataclass(frozen=True)
class KeyInfo:
    id: str
    scope: Scope
    site_id: str | None
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

    async def create(self, scope: str, site_id: str | None = None, name: str = "") -> str:
        if scope not in SCOPES:
            raise InvalidKeyRequest(f"scope must be one of {', '.join(SCOPES)}")
        if scope == "site":
            if not site_id or not valid_site_id(site_id):
                raise InvalidKeyRequest("a site key needs --site with a valid site id")
        elif site_id is not None:
            raise InvalidKeyRequest("only site keys belong to a site")
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(api_keys).values(
                    id=key_id,
                    secret_hash=_hash(secret),
                    scope=scope,
                    site_id=site_id,
                    name=name,
                    created_at=self._clock(),
                )
            )
        return f"{PREFIX}{key_id}_{secret}"

    async def revoke(self, key_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=self._clock())
            )
        self._verified.pop(key_id, None)
        return bool(result.rowcount)

    async def list(self) -> list[KeyInfo]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(api_keys).order_by(api_keys.c.created_at))).all()
        return [KeyInfo(r.id, r.scope, r.site_id, r.name, r.created_at, r.revoked_at) for r in rows]

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
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                )
            ).first()
        if row is None or not hmac.compare_digest(row.secret_hash, digest):
            return None
        principal = Principal(key_id=key_id, scope=row.scope, site_id=row.site_id)
        self._verified[key_id] = (row.secret_hash, principal, now + self._cache_s)
        return principal
