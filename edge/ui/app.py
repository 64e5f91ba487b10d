"""The web UI's routes: pages, their live fragments, the event stream, login and actions.

Pages are server-rendered (Jinja2, autoescaped). Each live section of a page is a
template block; ``?fragment=<block>`` on the page's URL renders just that block, which the
page's script fetches again when ``GET /ui/events`` says something it shows changed (and
on every (re)connection). Actions are POSTs under ``/ui/`` that need a session, its CSRF
token, a same-origin request and the right role; they answer JSON to the page's script
and a small result page to a browser without JavaScript.

Wiring (in the daemon): ``ui = WebUi(...)``; ``create_app(..., extra=[ui.router])``;
``ui.install(app)``; ``site.observe(ui.hub.on_site_change)``;
``slots.publishers.append(ui.hub)``; ``ui.hub.close()`` when stopping.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Annotated, Any, Final
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import structlog
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import StreamingResponse

from edge.config import SiteConfig
from edge.core.paging import BadPage, Key, decode_cursor
from edge.ocpp.server import OcppServer
from edge.services.site import Clock, Site
from edge.services.slots import SlotService
from edge.services.users import LoginSession, Role, new_token
from edge.ui.actions import ActionResult, Actions
from edge.ui.auth import (
    CSRF_HEADER,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    ApiGuard,
    Auth,
    LoginRefused,
    LoginThrottle,
    LoginThrottled,
    client_address,
    cross_origin,
    is_https,
    is_loopback,
    same_token,
)
from edge.ui.live import LiveHub, sse_frame
from edge.ui.views import EVENT_TYPES, TRIGGER_MESSAGES, SiteViews, as_time

log = structlog.get_logger(__name__)
HEARTBEAT: Final = 15.0
MAX_FORM: Final = 16 * 1024
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_TYPES: Final = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml",
                 ".png": "image/png"}  # fmt: skip


class UiDenied(Exception):
    """Not logged in (401: to the login page) or not allowed (403)."""

    def __init__(self, status: int, message: str, redirect: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.redirect = redirect


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    media_type: str
    etag: str


def _static_files() -> dict[str, StaticFile]:
    found: dict[str, StaticFile] = {}
    for entry in resources.files("edge.ui").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _TYPES:
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            found[entry.name] = StaticFile(body, _TYPES[suffix], etag)
    return found


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host, no //) may follow a login."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def _kw(watts: float | None) -> str:
    return "\u2013" if watts is None else f"{watts / 1000:.1f} kW"


def _kwh(wh: float | None) -> str:
    return "\u2013" if wh is None else f"{wh / 1000:.2f} kWh"


def _label(word: str | None) -> str:
    return (word or "unknown").replace("_", " ")


class WebUi:
    def __init__(
        self,
        config: SiteConfig,
        site: Site,
        slots: SlotService,
        server: OcppServer,
        clock: Clock,
        heartbeat: float = HEARTBEAT,
    ) -> None:
        self.config = config
        self.views = SiteViews(site, slots, server, clock)
        http = config.http
        self.auth = Auth(
            site.store,
            clock,
            throttle=LoginThrottle(http.login_attempts, timedelta(seconds=http.login_window)),
            concurrency=http.login_concurrency,
            queue=http.login_queue,
        )
        self.actions = Actions(self.views, self.auth.passwords)
        self.hub = LiveHub(site, self.views.alerts)
        self.heartbeat = heartbeat
        self.open_api = http.trust_loopback and is_loopback(http.host)
        self.static = _static_files()
        self.templates = Environment(
            loader=PackageLoader("edge.ui", "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(kw=_kw, kwh=_kwh, label=_label, as_time=as_time)
        self.templates.globals["m"] = self.templates.get_template("macros.html").module
        self.router = self._routes()

    def install(self, app: FastAPI) -> None:
        """The JSON API's guard and the UI's error pages (call before serving)."""
        app.add_middleware(
            ApiGuard, auth=self.auth, open_api=self.open_api, own_host=self.config.http.host
        )

        async def denied(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, UiDenied)
            if exc.redirect is not None:
                return RedirectResponse(exc.redirect, status_code=303)
            if _wants_json(request):
                return JSONResponse({"ok": False, "message": exc.message}, exc.status)
            return self._page(request, "error.html", None, {"message": exc.message}, exc.status)

        app.add_exception_handler(UiDenied, denied)

    # --- rendering -----------------------------------------------------------------

    def _page(
        self,
        request: Request,
        template: str,
        session: LoginSession | None,
        context: dict[str, Any],
        status: int = 200,
    ) -> HTMLResponse:
        fragment = request.query_params.get("fragment")
        page = self.templates.get_template(template)
        values = {
            "site": self.config.site,
            "user": session.user if session else None,
            "csrf": session.csrf_token if session else "",
            "can_act": session is not None and session.user.role.allows(Role.TECHNICIAN),
            "is_admin": session is not None and session.user.role.allows(Role.ADMIN),
            "path": request.url.path,
            "now": self.views.clock(),
            **context,
        }
        if fragment is not None:
            block = page.blocks.get(fragment)
            if block is None:
                return HTMLResponse("no such fragment", 404, headers=SECURITY_HEADERS)
            html = "".join(block(page.new_context(values)))
        else:
            html = page.render(values)
        return HTMLResponse(html, status, headers=SECURITY_HEADERS)

    def _answer(self, request: Request, result: ActionResult) -> Response:
        if _wants_json(request):
            return JSONResponse(result.as_json(), result.status_code, headers=SECURITY_HEADERS)
        referer = request.headers.get("referer", "")
        back = _safe_next(urlsplit(referer).path if referer else "/")
        return self._page(
            request, "result.html", None, {"result": result, "back": back}, result.status_code
        )

    # --- who is asking -------------------------------------------------------------

    async def _session(self, request: Request) -> LoginSession | None:
        return await self.auth.session(request.cookies.get(SESSION_COOKIE))

    def _viewer(self, role: Role = Role.VIEWER) -> Callable[[Request], Awaitable[LoginSession]]:
        async def dependency(request: Request) -> LoginSession:
            session = await self._session(request)
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

    def _actor(
        self, role: Role
    ) -> Callable[[Request], Awaitable[tuple[LoginSession, dict[str, str]]]]:
        async def dependency(request: Request) -> tuple[LoginSession, dict[str, str]]:
            session = await self._session(request)
            if session is None:
                raise UiDenied(401, "log in first")
            form = await _form(request)
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

    # --- routes --------------------------------------------------------------------

    def _routes(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        viewer = Depends(self._viewer())
        admin = Depends(self._viewer(Role.ADMIN))
        technician_action = Depends(self._actor(Role.TECHNICIAN))
        admin_action = Depends(self._actor(Role.ADMIN))
        views = self.views

        @router.get("/static/{name}")
        async def static(name: str, request: Request) -> Response:
            found = self.static.get(name)
            if found is None:
                return Response("not found", 404)
            headers = {"ETag": found.etag, "Cache-Control": "no-cache",
                       "X-Content-Type-Options": "nosniff"}  # fmt: skip
            if request.headers.get("if-none-match") == found.etag:
                return Response(status_code=304, headers=headers)
            return Response(found.body, media_type=found.media_type, headers=headers)

        # -- login ---------------------------------------------------------------

        @router.get("/login")
        async def login_form(request: Request, next: str | None = None) -> Response:
            if await self._session(request) is not None:
                return RedirectResponse(_safe_next(next), 303)
            return await self._login_page(request, next, None, 200)

        @router.post("/login")
        async def login(request: Request) -> Response:
            form = await _form(request)
            target = form.get("next")
            if (
                cross_origin(request)
                or not same_token(form.get("login_token"), request.cookies.get(LOGIN_COOKIE, ""))
                or not form.get("login_token")
            ):
                return await self._login_page(
                    request, target, "The login form expired: please try again.", 403
                )
            try:
                created = await self.auth.login(
                    form.get("username", "").strip(),
                    form.get("password", ""),
                    client_address(request),
                )
            except LoginThrottled as err:
                throttled = await self._login_page(request, target, str(err), 429)
                throttled.headers["Retry-After"] = f"{err.retry_after:.0f}"
                return throttled
            except LoginRefused:
                return await self._login_page(request, target, "Wrong user name or password.", 401)
            response = RedirectResponse(_safe_next(target), 303)
            response.set_cookie(
                SESSION_COOKIE, created.token, max_age=int(SESSION_LIFETIME.total_seconds()),
                path="/", secure=is_https(request), httponly=True, samesite="strict",
            )  # fmt: skip
            response.delete_cookie(LOGIN_COOKIE, path="/")
            return response

        @router.post("/logout")
        async def logout(request: Request) -> Response:
            session = await self._session(request)
            form = await _form(request)
            token = request.cookies.get(SESSION_COOKIE, "")
            if session is not None:
                if cross_origin(request) or not same_token(
                    request.headers.get(CSRF_HEADER) or form.get("csrf_token"), session.csrf_token
                ):
                    raise UiDenied(403, "the form's security token is missing or stale")
                await self.auth.logout(token)
                log.info("ui.logout", user=session.user.username)
            response = RedirectResponse("/login", 303)
            response.delete_cookie(SESSION_COOKIE, path="/")
            return response

        @router.get("/ui/whoami")
        async def whoami(session: LoginSession = viewer) -> dict[str, str]:
            return {"username": session.user.username, "role": session.user.role.value}

        # -- live --------------------------------------------------------------------

        @router.get("/ui/events")
        async def events(request: Request, session: LoginSession = viewer) -> Response:
            token = request.cookies.get(SESSION_COOKIE, "")
            return StreamingResponse(
                self._stream(token, session),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            )

        @router.get("/ui/snapshot")
        async def snapshot(session: LoginSession = viewer) -> dict[str, Any]:
            return {
                "slots": views.slot_documents(),
                "summary": views.summary(),
                "chargers": views.chargers(),
                "sessions": views.active_sessions(),
                "alerts": [a.as_json() for a in views.alerts()],
            }

        # -- pages -------------------------------------------------------------------

        @router.get("/")
        async def overview(
            request: Request,
            session: LoginSession = viewer,
            hours: Annotated[float, Query(gt=0, le=48)] = 6,
        ) -> Response:
            fragment = request.query_params.get("fragment")
            chargers = views.chargers()
            context: dict[str, Any] = {
                "slots": views.slot_documents(),
                "summary": views.summary(),
                "chargers": chargers,
                "counts": views.charger_counts(chargers),
                "alerts": views.alerts(),
                "power_now_w": views.power_now_w(),
                "hours": hours,
                "chart": await views.power_chart(hours) if fragment in (None, "power") else None,
            }
            return self._page(request, "overview.html", session, context)

        @router.get("/chargers")
        async def chargers(request: Request, session: LoginSession = viewer) -> Response:
            return self._page(request, "chargers.html", session, {"chargers": views.chargers()})

        @router.get("/chargers/{charger_id}")
        async def charger(
            charger_id: str, request: Request, session: LoginSession = viewer
        ) -> Response:
            detail = await views.charger_detail(charger_id)
            if detail is None:
                raise UiDenied(404, f"no charger {charger_id!r}")
            context = {"charger": detail, "trigger_messages": TRIGGER_MESSAGES}
            return self._page(request, "charger.html", session, context)

        @router.get("/sessions")
        async def sessions(
            request: Request,
            session: LoginSession = viewer,
            charger: str = "",
            id_tag: str = "",
            status: str = "",
            limit: Annotated[int, Query(ge=1, le=500)] = 50,
            cursor: str | None = None,
        ) -> Response:
            wanted = status if status in {"active", "completed", "inferred_stopped"} else None
            history, older = None, None
            if request.query_params.get("fragment") is None:
                history, following = await views.session_history(
                    charger.strip() or None, id_tag.strip() or None, wanted, limit,
                    _after("sessions", cursor, (str, str)),
                )  # fmt: skip
                older = _older(request, following)
            context = {
                "active": views.active_sessions(),
                "history": history,
                "older": older,
                "filters": {"charger": charger, "id_tag": id_tag, "status": status, "limit": limit},
                "charger_ids": sorted(c["id"] for c in views.chargers()),
            }
            return self._page(request, "sessions.html", session, context)

        @router.get("/sensors")
        async def sensors(request: Request, session: LoginSession = viewer) -> Response:
            return self._page(request, "sensors.html", session, {"sensors": views.sensors()})

        @router.get("/events")
        async def event_log(
            request: Request,
            session: LoginSession = viewer,
            kind: str = "",
            limit: Annotated[int, Query(ge=1, le=1000)] = 100,
            cursor: str | None = None,
        ) -> Response:
            family = kind if kind in EVENT_TYPES else None
            found, following = await views.events(family, limit, _after("events", cursor, (int,)))
            context = {
                "events": found,
                "older": _older(request, following),
                "audit": await views.audit(50),
                "kinds": EVENT_TYPES,
                "kind": kind,
                "limit": limit,
            }
            return self._page(request, "events.html", session, context)

        @router.get("/users")
        async def users(request: Request, session: LoginSession = admin) -> Response:
            from edge.services.users import list_users

            found = await self.views.site.store.read(list_users)
            return self._page(request, "users.html", session, {"users": found, "roles": list(Role)})

        # -- actions -----------------------------------------------------------------

        @router.post("/ui/chargers/{charger_id}/{command}")
        async def charger_action(
            charger_id: str,
            command: str,
            request: Request,
            actor: tuple[LoginSession, dict[str, str]] = technician_action,
        ) -> Response:
            session, form = actor
            result = await self.actions.charger(session.user, charger_id, command, form)
            return self._answer(request, result)

        @router.post("/ui/slots/{slot_id}/{action}")
        async def slot_action(
            slot_id: str,
            action: str,
            request: Request,
            actor: tuple[LoginSession, dict[str, str]] = technician_action,
        ) -> Response:
            session, form = actor
            result = await self.actions.slot(session.user, slot_id, action, form)
            return self._answer(request, result)

        @router.post("/ui/slots")
        async def slot_form(
            request: Request, actor: tuple[LoginSession, dict[str, str]] = technician_action
        ) -> Response:
            """The overview's one form for every slot: ``slot_id`` and ``action`` fields."""
            session, form = actor
            result = await self.actions.slot(
                session.user, form.get("slot_id", ""), form.get("action", ""), form
            )
            return self._answer(request, result)

        @router.post("/ui/users/{action}")
        async def user_action(
            action: str, request: Request, actor: tuple[LoginSession, dict[str, str]] = admin_action
        ) -> Response:
            session, form = actor
            result = await self.actions.user(session.user, action, form)
            return self._answer(request, result)

        return router

    async def _login_page(
        self, request: Request, target: str | None, error: str | None, status: int
    ) -> HTMLResponse:
        token = new_token()
        context = {
            "error": error,
            "next": _safe_next(target),
            "login_token": token,
            "no_users": not await self.auth.users_exist(),
        }
        response = self._page(request, "login.html", None, context, status)
        response.set_cookie(
            LOGIN_COOKIE, token, max_age=3600, path="/", secure=is_https(request),
            httponly=True, samesite="strict",
        )  # fmt: skip
        return response

    async def _stream(self, token: str, session: LoginSession) -> AsyncIterator[bytes]:
        async with self.hub.subscribe() as subscriber:
            log.info("ui.live.connected", user=session.user.username, clients=self.hub.subscribers)
            yield b"retry: 2000\n\n"
            yield sse_frame({"type": "hello", "user": session.user.username})
            while True:
                frame = await subscriber.next(self.heartbeat)
                if frame == b"":
                    return
                if frame is None:
                    if await self.auth.session(token) is None:
                        return  # logged out, expired or deleted meanwhile
                    frame = b": heartbeat\n\n"
                yield frame


def _after(kind: str, cursor: str | None, types: tuple[type, ...]) -> Key | None:
    """The page's position from its ``cursor`` (the lists' own, :mod:`edge.core.paging`)."""
    try:
        return decode_cursor(kind, cursor, types) if cursor else None
    except BadPage as err:
        raise UiDenied(400, str(err)) from err


def _older(request: Request, cursor: str | None) -> str | None:
    """The address of the next (older) page: this page's filters and the cursor."""
    if cursor is None:
        return None
    kept = [
        (k, v) for k, v in request.query_params.multi_items() if k not in {"cursor", "fragment"}
    ]
    return f"{request.url.path}?{urlencode([*kept, ('cursor', cursor)])}"


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM:
        raise UiDenied(413, "the form is too large")
    if not body:
        return {}
    try:
        text = body.decode()
    except UnicodeDecodeError as err:
        raise UiDenied(400, "the form is not UTF-8") from err
    return dict(parse_qsl(text, keep_blank_values=True))
