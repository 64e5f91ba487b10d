"""Logins, sessions, CSRF, roles and the JSON API's guard, against the running daemon
over HTTP (no browser); the `evpark users` commands on the database of a running daemon."""

from __future__ import annotations

from pathlib import Path

import httpx

from edge.config import SiteConfig
from edge.daemon import EdgeDaemon
from tests.edge.conftest import site_file
from tests.edge.ui.conftest import (
    PASSWORD,
    add_users,
    base_url,
    csrf_of,
    logged_in,
    login,
    ui_config,
)
from tests.harness.processes import run_evpark_async
from tests.mosquitto import Mosquitto


async def test_login_sets_a_strict_http_only_session_cookie_and_logout_ends_it(
    daemon: EdgeDaemon,
) -> None:
    async with httpx.AsyncClient(base_url=base_url(daemon)) as http:
        assert (await http.get("/")).headers["location"].startswith("/login")
        reply = await login(http, "vic")
        assert reply.status_code == 303
        cookie = next(
            h for h in reply.headers.get_list("set-cookie") if h.startswith("evpark_session=")
        )
        assert "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower()
        assert "Secure" not in cookie  # plain http on loopback
        page = await http.get("/")
        assert page.status_code == 200
        assert "vic" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        csrf = await csrf_of(http)
        assert (await http.post("/logout", data={"csrf_token": csrf})).status_code == 303
        assert (await http.get("/")).status_code == 303  # to the login page again
        http.cookies.clear()


async def test_https_behind_a_proxy_gets_a_secure_cookie(daemon: EdgeDaemon) -> None:
    async with httpx.AsyncClient(base_url=base_url(daemon)) as http:
        form = await http.get("/login")
        token = form.text.split('name="login_token" value="')[1].split('"')[0]
        reply = await http.post(
            "/login",
            data={"username": "vic", "password": PASSWORD, "login_token": token},
            headers={"X-Forwarded-Proto": "https"},
        )
        assert reply.status_code == 303
        cookie = next(
            h for h in reply.headers.get_list("set-cookie") if h.startswith("evpark_session=")
        )
        assert "Secure" in cookie


async def test_wrong_passwords_are_refused_then_throttled(daemon: EdgeDaemon) -> None:
    async with httpx.AsyncClient(base_url=base_url(daemon)) as http:
        statuses = [(await login(http, "vic", "wrong password!")).status_code for _ in range(10)]
        assert statuses == [401] * 10
        assert (await login(http, "nobody", "wrong password!")).status_code == 429
        throttled = await login(http, "vic")  # even the right password, for a while
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) > 0


async def test_login_form_needs_its_own_token_and_next_stays_on_site(daemon: EdgeDaemon) -> None:
    async with httpx.AsyncClient(base_url=base_url(daemon)) as http:
        forged = await http.post("/login", data={"username": "vic", "password": PASSWORD})
        assert forged.status_code == 403
        form = await http.get("/login")
        token = form.text.split('name="login_token" value="')[1].split('"')[0]
        reply = await http.post(
            "/login",
            data={"username": "vic", "password": PASSWORD, "login_token": token,
                  "next": "//evil.example/"},
        )  # fmt: skip
        assert reply.status_code == 303
        assert reply.headers["location"] == "/"


async def test_actions_need_the_csrf_token_the_same_origin_and_the_technician_role(
    daemon: EdgeDaemon,
) -> None:
    form = {"slot_id": "B1", "action": "out-of-service", "reason": "repainting"}
    json_reply = {"Accept": "application/json"}
    async with logged_in(daemon, "vic") as viewer:
        refused = await viewer.http.post(
            "/ui/slots", data={**form, "csrf_token": viewer.csrf}, headers=json_reply
        )
        assert refused.status_code == 403
        assert "technician" in refused.json()["message"]
    async with logged_in(daemon, "tess") as tech:
        assert (await tech.http.post("/ui/slots", data=form, headers=json_reply)).status_code == 403
        stale = {**form, "csrf_token": "not-the-token"}
        assert (
            await tech.http.post("/ui/slots", data=stale, headers=json_reply)
        ).status_code == 403
        cross = await tech.http.post(
            "/ui/slots",
            data={**form, "csrf_token": tech.csrf},
            headers={**json_reply, "Origin": "http://evil.example"},
        )
        assert cross.status_code == 403
        assert daemon.slots.model is not None
        assert daemon.slots.model.view("B1").state.value != "out_of_service"
        done = await tech.http.post(
            "/ui/slots", data=form, headers={**json_reply, "X-CSRF-Token": tech.csrf}
        )
        assert done.status_code == 200, done.text
        assert done.json()["ok"] is True
        assert daemon.slots.model.view("B1").state.value == "out_of_service"
        offline = await tech.http.post(
            "/ui/chargers/CP-1/reset",
            data={"csrf_token": tech.csrf, "type": "soft"},
            headers=json_reply,
        )
        assert offline.status_code == 404  # configured, never connected: not known yet
        events = await tech.http.get("/events")
        assert "out-of-service" in events.text
        assert "tess" in events.text


async def test_only_an_admin_manages_users_and_the_last_admin_stays(daemon: EdgeDaemon) -> None:
    json_reply = {"Accept": "application/json"}
    async with logged_in(daemon, "tess") as tech:
        assert (await tech.http.get("/users")).status_code == 403
        created = await tech.http.post(
            "/ui/users/create",
            data={"csrf_token": tech.csrf, "username": "eve", "role": "admin",
                  "password": PASSWORD, "confirm": PASSWORD},
            headers=json_reply,
        )  # fmt: skip
        assert created.status_code == 403
    async with logged_in(daemon, "ada") as admin:
        assert (await admin.http.get("/users")).status_code == 200
        created = await admin.http.post(
            "/ui/users/create",
            data={"csrf_token": admin.csrf, "username": "nina", "role": "viewer",
                  "password": PASSWORD, "confirm": PASSWORD},
            headers=json_reply,
        )  # fmt: skip
        assert created.status_code == 200, created.text
        last = await admin.http.post(
            "/ui/users/set-role",
            data={"csrf_token": admin.csrf, "username": "ada", "role": "viewer"},
            headers=json_reply,
        )
        assert last.status_code == 422
        assert "only admin" in last.json()["message"]
    async with logged_in(daemon, "nina") as nina:
        assert (await nina.http.get("/")).status_code == 200


async def test_json_api_is_open_on_loopback_unless_a_proxy_forwarded_it(
    daemon: EdgeDaemon,
) -> None:
    async with httpx.AsyncClient(base_url=base_url(daemon)) as http:
        assert (await http.get("/api/slots")).status_code == 200
        proxied = await http.get("/api/slots", headers={"X-Forwarded-For": "192.0.2.7"})
        assert proxied.status_code == 401


async def test_json_api_off_loopback_needs_a_session_or_a_token(
    tmp_path: Path, broker: Mosquitto
) -> None:
    config = ui_config(tmp_path / "data", broker, http={"host": "0.0.0.0", "port": 0})
    config_file = site_file(tmp_path, config)
    async with EdgeDaemon(config) as daemon:
        await add_users(daemon)
        async with httpx.AsyncClient(base_url=base_url(daemon)) as anonymous:
            refused = await anonymous.get("/api/slots")
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert (await anonymous.get("/healthz")).status_code == 200
        body = {"out_of_service": True, "reason": "works"}
        async with logged_in(daemon, "vic") as viewer:
            assert (await viewer.http.get("/api/slots")).status_code == 200
            denied = await viewer.http.post(
                "/api/slots/B2/out-of-service", json=body, headers={"X-CSRF-Token": viewer.csrf}
            )
            assert denied.status_code == 403
        async with logged_in(daemon, "tess") as tech:
            no_header = await tech.http.post("/api/slots/B2/out-of-service", json=body)
            assert no_header.status_code == 403
            done = await tech.http.post(
                "/api/slots/B2/out-of-service", json=body, headers={"X-CSRF-Token": tech.csrf}
            )
            assert done.status_code == 200
        made = await run_evpark_async(
            "users", "token", "--config", str(config_file), "--username", "tess"
        )
        assert made.code == 0, made.stderr
        token = made.stdout.strip()
        async with httpx.AsyncClient(
            base_url=base_url(daemon), headers={"Authorization": f"Bearer {token}"}
        ) as script:
            assert (await script.get("/api/slots/B2")).json()["state"] == "out_of_service"
            back = await script.post("/api/slots/B2/out-of-service", json={"out_of_service": False})
            assert back.status_code == 200
        async with httpx.AsyncClient(
            base_url=base_url(daemon), headers={"Authorization": "Bearer made-up"}
        ) as guesser:
            assert (await guesser.get("/api/slots")).status_code == 401


async def test_users_commands_work_while_the_daemon_runs(
    daemon: EdgeDaemon, site_config: SiteConfig, tmp_path: Path
) -> None:
    config = str(site_file(tmp_path, site_config))

    async def run(*args: str, stdin: str = "") -> str:
        ran = await run_evpark_async("users", *args, "--config", config, stdin=stdin)
        assert ran.code == 0, ran.stderr
        return ran.stdout

    await run(
        "create", "--username", "olga", "--role", "technician", "--password-stdin",
        stdin="olga's long password\n",
    )  # fmt: skip
    listed = await run("list")
    assert "olga" in listed
    assert "technician" in listed
    async with httpx.AsyncClient(base_url=base_url(daemon)) as http:
        assert (await login(http, "olga", "olga's long password")).status_code == 303
        assert (await http.get("/")).status_code == 200
        await run("set-role", "--username", "olga", "--role", "viewer")
        assert (await http.get("/ui/whoami")).json() == {"username": "olga", "role": "viewer"}
        await run("delete", "--username", "olga")
        assert (await http.get("/ui/whoami")).status_code == 401  # the session went with it
    duplicate = await run_evpark_async(
        "users", "create", "--config", config, "--username", "ADA", "--password-stdin",
        stdin="another long password\n",
    )  # fmt: skip
    assert duplicate.code == 1
    assert "already exists" in duplicate.stderr
    short = await run_evpark_async(
        "users", "create", "--config", config, "--username", "sam", "--password-stdin",
        stdin="short\n",
    )  # fmt: skip
    assert short.code == 1
    assert "at least 10 characters" in short.stderr
