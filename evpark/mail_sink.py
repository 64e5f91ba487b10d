"""The demo's mail sink: a local SMTP server that shows each message it receives.

Central sends the demo driver's notifications by email to it (``EVPARK_CENTRAL_NOTIFICATION__
SMTP__HOST``/``__PORT`` point there), so the demo shows what a driver is told without a
real mail server. Each message becomes one short line (recipient and subject) on the
demo's output and in a log file; the whole message is kept in that file too, after its
line, for whoever wants to read the body.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class ReceivedMail:
    to: tuple[str, ...]
    subject: str
    body: str

    def line(self) -> str:
        return f"mail to {', '.join(self.to)}: {self.subject}"


@dataclass
class _Handler:
    """aiosmtpd calls ``handle_DATA`` for each message, on the controller's own thread."""

    log_file: Path
    show: Callable[[str], None]
    received: list[ReceivedMail] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = email.message_from_bytes(
            envelope.original_content or b"", policy=email.policy.default
        )
        body = message.get_body(preferencelist=("plain",))
        mail = ReceivedMail(
            to=tuple(str(to) for to in envelope.rcpt_tos),
            subject=str(message.get("subject", "")),
            body=body.get_content() if body is not None else "",  # type: ignore[attr-defined]
        )
        self.received.append(mail)
        with self.log_file.open("a", encoding="utf-8") as out:
            out.write(f"{mail.line()}\n{mail.body.rstrip()}\n\n")
        self.show(mail.line())
        return "250 Message accepted"


class MailSink:
    """An SMTP server on 127.0.0.1:``port`` while the ``with`` block runs."""

    def __init__(self, port: int, log_file: Path, show: Callable[[str], None]) -> None:
        self.port = port
        self.log_file = log_file
        self._handler = _Handler(log_file, show)
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=port)

    @property
    def received(self) -> list[ReceivedMail]:
        return list(self._handler.received)

    def __enter__(self) -> Self:
        self._controller.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._controller.stop()
