"""Real outside services for the notification and analytics tests.

* ``smtp_server``: an aiosmtpd SMTP server on a free port that keeps what it receives;
  recipients at ``bounce.example`` are refused (550), and ``flaky.example`` ones get a
  451 on their first try.
* ``http_receiver``: a uvicorn HTTP server on a free port standing in for the SMS and
  push providers; it keeps every request and answers with the status codes queued in
  ``statuses`` (then 200).
* ``database_url``: parametrized, a SQLite file then a fresh PostgreSQL database
  (dropped afterwards; skips on a laptop without PostgreSQL, fails under ``CI=true``).
* ``FakeClock``: a settable clock returning aware UTC datetimes.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI, Request, Response

from tests.harness.ports import free_port
from tests.harness.shared_services import pg_databases, pg_url


class FakeClock:
    def __init__(self, now: datetime) -> None:
        assert now.tzinfo is not None
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


async def eventually(condition: Any, within: float = 10.0) -> None:
    """Poll ``condition()`` until true; fail after ``within`` seconds."""
    async with asyncio.timeout(within):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


# -- SMTP ----------------------------------------------------------------------------


@dataclass
class SmtpRecorder:
    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    flaky_seen: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.endswith("@bounce.example"):
            return "550 5.1.1 no such user"
        if address.endswith("@flaky.example") and address not in self.flaky_seen:
            self.flaky_seen.add(address)
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 Message accepted"


@pytest.fixture
def smtp_server() -> Iterator[SmtpRecorder]:
    recorder = SmtpRecorder(port=free_port())
    controller = Controller(recorder, hostname="127.0.0.1", port=recorder.port)
    controller.start()
    try:
        yield recorder
    finally:
        controller.stop()


# -- HTTP providers ------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class HttpReceiver:
    port: int
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    default_status: int = 200

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]


def _receiver_app(receiver: HttpReceiver) -> FastAPI:
    app = FastAPI()

    @app.post("/{path:path}")
    async def receive(path: str, request: Request) -> Response:
        receiver.requests.append(Received("/" + path, dict(request.headers), await request.json()))
        status = receiver.statuses.pop(0) if receiver.statuses else receiver.default_status
        return Response(status_code=status, content=b'{"ok": true}')

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


@pytest.fixture
async def http_receiver() -> AsyncIterator[HttpReceiver]:
    receiver = HttpReceiver(port=free_port())
    config = uvicorn.Config(
        _receiver_app(receiver),
        host="127.0.0.1",
        port=receiver.port,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started or task.done(), within=10)
        assert server.started, "the HTTP receiver did not start"
        yield receiver
    finally:
        server.should_exit = True
        await task


# -- PostgreSQL ----------------------------------------------------------------------


@asynccontextmanager
async def pg_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database's async URL, dropped on exit."""
    name = f"evpark_test_{uuid.uuid4().hex[:12]}"
    async with pg_databases([name]):
        yield pg_url(name)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The service's database: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'service.db'}"
        return
    async with pg_database() as url:
        yield url
