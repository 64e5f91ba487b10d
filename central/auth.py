"""Who is calling: the principal the gateway authenticated, as services see it.

The gateway checks the API key and rate limit, strips any identity headers a client
sent, and forwards the caller's identity as ``X-Evpark-Key-Id``, ``X-Evpark-Scope``,
``X-Evpark-Site``, ``X-Evpark-User`` and ``X-Evpark-Vehicles`` (plus ``X-Evpark-Internal``
with the shared ``internal_token`` when services run separately). Services declare what
they accept with ``Depends(require("driver", "operator"))``, check ownership with
:meth:`Principal.may_see_vehicle` / :meth:`Principal.may_see_user`, and never see raw
API keys nor read the gateway's tables: the subject travels with the request.

Scopes: ``driver`` (a driver or fleet app, bound to one user and that user's vehicles:
reserve, charge, own history and preferences), ``operator`` (everything, including
configuration and analytics), ``site`` (one edge: its own sync uplink and commands, its
own sessions).
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
USER_HEADER = "x-evpark-user"
VEHICLES_HEADER = "x-evpark-vehicles"
INTERNAL_HEADER = "x-evpark-internal"
IDENTITY_HEADERS = (
    KEY_ID_HEADER,
    SCOPE_HEADER,
    SITE_HEADER,
    USER_HEADER,
    VEHICLES_HEADER,
    INTERNAL_HEADER,
)

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
    user_id: str | None = None
    vehicles: frozenset[str] = frozenset()

    def may_act_for_site(self, site_id: str) -> bool:
        return self.scope == "operator" or (self.scope == "site" and self.site_id == site_id)

    def may_see_vehicle(self, vehicle_id: str | None) -> bool:
        """Operators see every vehicle; a driver only the vehicles of its user."""
        if self.scope == "operator":
            return True
        return self.scope == "driver" and vehicle_id is not None and vehicle_id in self.vehicles

    def may_see_user(self, user_id: str) -> bool:
        if self.scope == "operator":
            return True
        return self.scope == "driver" and self.user_id is not None and self.user_id == user_id


def forbidden(what: str) -> HTTPException:
    """The one 403 for data of another subject (the same answer whether it exists or not)."""
    return HTTPException(status.HTTP_403_FORBIDDEN, f"this key may not access {what}")


def check_vehicle(
    principal: Principal, vehicle_id: str | None, without: str = "data of no vehicle"
) -> None:
    """403 unless the principal may see ``vehicle_id`` (``without``: what a missing
    vehicle stands for, in the message)."""
    if not principal.may_see_vehicle(vehicle_id):
        raise forbidden(f"vehicle {vehicle_id}" if vehicle_id else without)


def check_user(principal: Principal, user_id: str) -> None:
    if not principal.may_see_user(user_id):
        raise forbidden(f"user {user_id}")


def vehicles_header(vehicles: frozenset[str]) -> str:
    return ",".join(sorted(vehicles))


def principal_from_request(request: Request) -> Principal | None:
    headers = request.headers
    token: str = getattr(request.app.state, "internal_token", "")
    if token and not hmac.compare_digest(headers.get(INTERNAL_HEADER, ""), token):
        return None
    scope = headers.get(SCOPE_HEADER)
    key_id = headers.get(KEY_ID_HEADER)
    if not key_id or scope not in SCOPES:
        return None
    vehicles = frozenset(v for v in headers.get(VEHICLES_HEADER, "").split(",") if v)
    return Principal(
        key_id=key_id,
        scope=scope,  # type: ignore[arg-type]
        site_id=headers.get(SITE_HEADER) or None,
        user_id=headers.get(USER_HEADER) or None,
        vehicles=vehicles,
    )


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
