"""The web UI's routes: pages, their live fragments, the event stream, login and actions.

Pages are rendered by :class:`~edge.ui.pages.Pages`, live sections refreshed as fragments
when ``GET /ui/events`` says something they show changed (and on every (re)connection).
Actions are POSTs under ``/ui/`` that need a session, its CSRF token, a same-origin request
and the right role (:class:`~edge.ui.access.Access`); they answer JSON to the page's script
and a small result page to a browser without JavaScript.

Wiring (in the daemon): ``ui = WebUi(...)``; ``create_app(..., extra=[ui.router])``;
``ui.install(app)``; ``site.observe(ui.hub.on_site_change)``;
``slots.publishers.append(ui.hub)``; ``ui.hub.close()`` when stopping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Any, Final

import structlog
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.responses import StreamingResponse

from edge.config import SiteConfig
from edge.ocpp.server import OcppServer
from edge.power.manager import LoadManager
from edge.services.site import Clock, Site
from edge.services.slots import SlotService
from edge.services.users import LoginSession, Role, new_token
from edge.ui.access import Access
from edge.ui.actions import Actions
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
from edge.ui.firmware import firmware_routes
from edge.ui.inputs import UiDenied, older_page, page_after, read_form, safe_next, wants_json
from edge.ui.live import LiveHub, sse_frame
from edge.ui.logs import log_requests
from edge.ui.pages import Pages
from edge.ui.power_page import power_routes
from edge.ui.static import static_files, static_response
from edge.ui.views import EVENT_TYPES, TRIGGER_MESSAGES, SiteViews

log = structlog.get_logger(__name__)
HEARTBEAT: Final = 15.0


class WebUi:
    def __init__(
        self,
        config: SiteConfig,
        site: Site,
        slots: SlotService,
        server: OcppServer,
        clock: Clock,
        heartbeat: float = HEARTBEAT,
        power: LoadManager | None = None,
    ) -> None:
        self.config = config
        self.power = power
        self.views = SiteViews(site, slots, server, clock)
        http = config.http
        self.auth = Auth(
            site.store,
            clock,
            throttle=LoginThrottle(http.login_attempts, timedelta(seconds=http.login_window)),
            concurrency=http.login_concurrency,
            queue=http.login_queue,
        )
        self.access = Access(self.auth)
        self.actions = Actions(self.views, self.auth.passwords)
        self.hub = LiveHub(site, self.views.alerts)
        self.heartbeat = heartbeat
        self.open_api = http.trust_loopback and is_loopback(http.host)
        self.static = static_files()
        self.pages = Pages(config.site, self.views.clock)
        self.router = self._routes()

    def site_limit_w(self) -> float | None:
        """The configured site limit, for the limit line of the power charts (None: no
        load management)."""
        if self.power is None or not self.power.enabled:
            return None
        return self.power.site_limit_w(configured=True)

    def install(self, app: FastAPI) -> None:
        """The JSON API's guard and the UI's error pages (call before serving)."""
        app.add_middleware(
            ApiGuard, auth=self.auth, open_api=self.open_api, own_host=self.config.http.host
        )

        async def denied(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, UiDenied)
            if exc.redirect is not None:
                return RedirectResponse(exc.redirect, status_code=303)
            if wants_json(request):
                return JSONResponse({"ok": False, "message": exc.message}, exc.status)
            return self.pages.render(
                request, "error.html", None, {"message": exc.message}, exc.status
            )

        app.add_exception_handler(UiDenied, denied)

    # --- routes --------------------------------------------------------------------

    def _routes(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        viewer = Depends(self.access.viewer())
        admin = Depends(self.access.viewer(Role.ADMIN))
        technician_action = Depends(self.access.actor(Role.TECHNICIAN))
        admin_action = Depends(self.access.actor(Role.ADMIN))
        views = self.views
        render = self.pages.render

        @router.get("/static/{name}")
        async def static(name: str, request: Request) -> Response:
            return static_response(self.static.get(name), request)

        # -- login ---------------------------------------------------------------

        @router.get("/login")
        async def login_form(request: Request, next: str | None = None) -> Response:
            if await self.access.session(request) is not None:
                return RedirectResponse(safe_next(next), 303)
            return await self._login_page(request, next, None, 200)

        @router.post("/login")
        async def login(request: Request) -> Response:
            form = await read_form(request)
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
            response = RedirectResponse(safe_next(target), 303)
            response.set_cookie(
                SESSION_COOKIE, created.token, max_age=int(SESSION_LIFETIME.total_seconds()),
                path="/", secure=is_https(request), httponly=True, samesite="strict",
            )  # fmt: skip
            response.delete_cookie(LOGIN_COOKIE, path="/")
            return response

        @router.post("/logout")
        async def logout(request: Request) -> Response:
            session = await self.access.session(request)
            form = await read_form(request)
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
                "chart": await views.power_chart(hours, self.site_limit_w())
                if fragment in (None, "power")
                else None,
            }
            return render(request, "overview.html", session, context)

        @router.get("/chargers")
        async def chargers(request: Request, session: LoginSession = viewer) -> Response:
            return render(request, "chargers.html", session, {"chargers": views.chargers()})

        @router.get("/chargers/{charger_id}")
        async def charger(
            charger_id: str, request: Request, session: LoginSession = viewer
        ) -> Response:
            detail = await views.charger_detail(charger_id)
            if detail is None:
                raise UiDenied(404, f"no charger {charger_id!r}")
            context: dict[str, Any] = {"charger": detail, "trigger_messages": TRIGGER_MESSAGES}
            context["log_requests"] = await log_requests(views.site, charger_id)
            return render(request, "charger.html", session, context)

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
                    page_after("sessions", cursor, (str, str)),
                )  # fmt: skip
                older = older_page(request, following)
            context = {
                "active": views.active_sessions(),
                "history": history,
                "older": older,
                "filters": {"charger": charger, "id_tag": id_tag, "status": status, "limit": limit},
                "charger_ids": sorted(c["id"] for c in views.chargers()),
            }
            return render(request, "sessions.html", session, context)

        @router.get("/sensors")
        async def sensors(request: Request, session: LoginSession = viewer) -> Response:
            return render(request, "sensors.html", session, {"sensors": views.sensors()})

        @router.get("/events")
        async def event_log(
            request: Request,
            session: LoginSession = viewer,
            kind: str = "",
            limit: Annotated[int, Query(ge=1, le=1000)] = 100,
            cursor: str | None = None,
        ) -> Response:
            family = kind if kind in EVENT_TYPES else None
            found, following = await views.events(
                family, limit, page_after("events", cursor, (int,))
            )
            context = {
                "events": found,
                "older": older_page(request, following),
                "audit": await views.audit(50),
                "kinds": EVENT_TYPES,
                "kind": kind,
                "limit": limit,
            }
            return render(request, "events.html", session, context)

        @router.get("/users")
        async def users(request: Request, session: LoginSession = admin) -> Response:
            from edge.services.users import list_users

            found = await self.views.site.store.read(list_users)
            return render(request, "users.html", session, {"users": found, "roles": list(Role)})

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
            return self.pages.answer(request, result)

        @router.post("/ui/slots/{slot_id}/{action}")
        async def slot_action(
            slot_id: str,
            action: str,
            request: Request,
            actor: tuple[LoginSession, dict[str, str]] = technician_action,
        ) -> Response:
            session, form = actor
            result = await self.actions.slot(session.user, slot_id, action, form)
            return self.pages.answer(request, result)

        @router.post("/ui/slots")
        async def slot_form(
            request: Request, actor: tuple[LoginSession, dict[str, str]] = technician_action
        ) -> Response:
            """The overview's one form for every slot: ``slot_id`` and ``action`` fields."""
            session, form = actor
            result = await self.actions.slot(
                session.user, form.get("slot_id", ""), form.get("action", ""), form
            )
            return self.pages.answer(request, result)

        @router.post("/ui/users/{action}")
        async def user_action(
            action: str, request: Request, actor: tuple[LoginSession, dict[str, str]] = admin_action
        ) -> Response:
            session, form = actor
            result = await self.actions.user(session.user, action, form)
            return self.pages.answer(request, result)

        router.include_router(firmware_routes(self))
        if self.power is not None:
            router.include_router(power_routes(self, self.power))
        return router

    async def _login_page(
        self, request: Request, target: str | None, error: str | None, status: int
    ) -> HTMLResponse:
        token = new_token()
        context = {
            "error": error,
            "next": safe_next(target),
            "login_token": token,
            "no_users": not await self.auth.users_exist(),
        }
        response = self.pages.render(request, "login.html", None, context, status)
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
