"""Who is asking: the UI's route dependencies that find the session and check it.

A page needs a session with a role (:meth:`Access.viewer`; without one a browser is sent
to the login page). An action also needs the session's CSRF token and a same-origin
request (:meth:`Access.actor`), and gets the form it posted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

import structlog
from fastapi import Request

from edge.services.users import LoginSession, Role
from edge.ui.auth import CSRF_HEADER, SESSION_COOKIE, Auth, cross_origin, same_token
from edge.ui.inputs import UiDenied, read_form

log = structlog.get_logger(__name__)


class Access:
    def __init__(self, auth: Auth) -> None:
        self.auth = auth

    async def session(self, request: Request) -> LoginSession | None:
        return await self.auth.session(request.cookies.get(SESSION_COOKIE))

    def viewer(self, role: Role = Role.VIEWER) -> Callable[[Request], Awaitable[LoginSession]]:
        async def dependency(request: Request) -> LoginSession:
            session = await self.session(request)
            if session is None:
                if "fragment" in request.query_params or request.url.path.startswith("/ui/"):
                    raise UiDenied(401, "log in first")
                target = quote(
                    request.url.path + (f"?{request.url.query}" if request.url.query else "")
                )
                raise UiDenied(401, "log in first", redirect=f"/login?next={target}")
            if not session.user.role.allows(role):
                raise UiDenied(403, f"this page needs the {role} role")
            return session

        return dependency

    def actor(
        self, role: Role
    ) -> Callable[[Request], Awaitable[tuple[LoginSession, dict[str, str]]]]:
        async def dependency(request: Request) -> tuple[LoginSession, dict[str, str]]:
            session = await self.session(request)
            if session is None:
                raise UiDenied(401, "log in first")
            form = await read_form(request)
            token = request.headers.get(CSRF_HEADER) or form.get("csrf_token")
            if cross_origin(request) or not same_token(token, session.csrf_token):
                log.warning("ui.csrf.refused", user=session.user.username, path=request.url.path)
                raise UiDenied(
                    403, "the form's security token is missing or stale: reload the page"
                )
            if not session.user.role.allows(role):
                log.warning(
                    "ui.action.forbidden", user=session.user.username, path=request.url.path
                )
                raise UiDenied(403, f"this needs the {role} role; you are {session.user.role}")
            return session, form

        return dependency
