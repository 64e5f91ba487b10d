"""Who is calling: the principal the gateway authenticated, as services see it.

The gateway checks the API key and rate limit, strips any identity headers a client
sent, and forwards the caller's identity as ``X-Evpark-Key-Id``, ``X-Evpark-Scope`` and
``X-Evpark-Site`` (plus ``X-Evpark-Internal`` with the shared ``internal_token`` when
services run separately). Services declare what they accept with
``Depends(require("driver", "operator"))`` and never see raw API keys.

Scopes: ``driver`` (a driver or fleet app: reserve, charge, own history), ``operator``
(everything, including configuration and analytics), ``site`` (one edge: its own sync
uplink and commands only).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

Scope = Literal["driver", "operator", "site"]
SCOPES: tuple[str, ...] = get_args(Scope)

KEY_ID_HEADER = "x-evpark-key-id"
SCOPE_HEADER = "x-evpark-scope"
SITE_HEADER = "x-evpark-site"
INTERNAL_HEADER = "x-evpark-internal"
IDENTITY_HEADERS = (KEY_ID_HEADER, SCOPE_HEADER, SITE_HEADER, INTERNAL_HEADER)

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `evpark central keys create`, as `Authorization: Bearer <key>`",
)


@dataclass(frozen=True)
class Principal:
    key_id: str
    scope: Scope
    site_id: str | None = None

    def may_act_for_site(self, site_id: str) -> bool:
        return self.scope == "operator" or (self.scope == "site" and self.site_id == site_id)


def principal_from_request(request: Request) -> Principal | None:
    headers = request.headers
    token: str = getattr(request.app.state, "internal_token", "")
    if token and not hmac.compare_digest(headers.get(INTERNAL_HEADER, ""), token):
        return None
    scope = headers.get(SCOPE_HEADER)
    key_id = headers.get(KEY_ID_HEADER)
    if not key_id or scope not in SCOPES:
        return None
    return Principal(key_id=key_id, scope=scope, site_id=headers.get(SITE_HEADER) or None)  # type: ignore[arg-type]


def require(*scopes: Scope) -> Callable[..., Principal]:
    """A FastAPI dependency: the caller's principal, 401 without one, 403 with another scope."""

    def dependency(
        request: Request,
        _credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    ) -> Principal:
        principal = principal_from_request(request)
        if principal is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing or invalid API key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if principal.scope not in scopes:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"a {principal.scope} key cannot do this (needs {' or '.join(scopes)})",
            )
        return principal

    return dependency
