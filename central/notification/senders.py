"""Channel adapters: email over SMTP (aiosmtplib), SMS and push over HTTP (httpx).

Each adapter has a timeout and translates its library's errors once, here, into
:mod:`central.notification.errors`. :class:`GuardedSender` adds a circuit breaker per
channel; retries with backoff are the queue's job (:mod:`central.notification.retry`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Protocol

import aiosmtplib
import httpx

from central.infra.resilience import Breaker, breaker_allow, breaker_record, breaker_retry_after
from central.notification.errors import (
    CircuitOpenError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from central.notification.model import Channel
from central.notification.settings import HttpProviderSettings, SmtpSettings


@dataclass(frozen=True)
class OutgoingMessage:
    id: str
    channel: Channel
    address: str
    subject: str
    body: str
    event_type: str
    event_id: str
    user_id: str


class Sender(Protocol):
    async def send(self, message: OutgoingMessage) -> None:
        """Deliver or raise a :class:`~central.notification.errors.DeliveryError`."""
        ...


class SmtpSender:
    def __init__(self, settings: SmtpSettings) -> None:
        self._s = settings

    def build(self, message: OutgoingMessage) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self._s.sender
        email["To"] = message.address
        email["Subject"] = message.subject
        email["Message-ID"] = make_msgid(idstring=message.id, domain="evpark")
        email["X-Evpark-Notification"] = message.id
        email["X-Evpark-Event"] = message.event_type
        email.set_content(message.body)
        return email

    async def send(self, message: OutgoingMessage) -> None:
        s = self._s
        try:
            email = self.build(message)
        except (ValueError, TypeError) as err:
            raise PermanentDeliveryError(f"cannot build the email: {err}") from err
        try:
            await aiosmtplib.send(
                email,
                hostname=s.host,
                port=s.port,
                username=s.username or None,
                password=s.password.get_secret_value() or None,
                use_tls=s.use_tls,
                start_tls=s.starttls,
                timeout=s.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as err:
            codes = [refusal.code for refusal in err.recipients]
            detail = "; ".join(f"{r.code} {r.message}" for r in err.recipients)
            if codes and all(500 <= code < 600 for code in codes):
                raise PermanentDeliveryError(f"recipient refused: {detail}") from err
            raise TransientDeliveryError(f"recipient deferred: {detail}") from err
        except aiosmtplib.SMTPResponseException as err:
            if 500 <= err.code < 600:
                raise PermanentDeliveryError(f"SMTP {err.code} {err.message}") from err
            raise TransientDeliveryError(f"SMTP {err.code} {err.message}") from err
        except (aiosmtplib.SMTPException, OSError) as err:
            raise TransientDeliveryError(f"SMTP {type(err).__name__}: {err}") from err


_RETRYABLE_STATUS = frozenset({408, 425, 429})


class HttpProviderSender:
    """A JSON ``POST`` per message with ``Authorization: Bearer`` and an
    ``Idempotency-Key`` (the notification id), so a provider can drop a repeated try.

    SMS body: ``{"to", "text", "reference"}``; push body: ``{"token", "title", "body",
    "data": {"event_type", "event_id", "notification_id"}, "reference"}``.
    """

    def __init__(
        self, channel: Channel, settings: HttpProviderSettings, client: httpx.AsyncClient
    ) -> None:
        self._channel = channel
        self._s = settings
        self._client = client

    def payload(self, message: OutgoingMessage) -> dict[str, object]:
        if self._channel == "sms":
            return {"to": message.address, "text": message.body, "reference": message.id}
        return {
            "token": message.address,
            "title": message.subject,
            "body": message.body,
            "data": {
                "event_type": message.event_type,
                "event_id": message.event_id,
                "notification_id": message.id,
            },
            "reference": message.id,
        }

    async def send(self, message: OutgoingMessage) -> None:
        headers = {"Idempotency-Key": message.id}
        token = self._s.token.get_secret_value()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = await self._client.post(
                self._s.url,
                json=self.payload(message),
                headers=headers,
                timeout=httpx.Timeout(self._s.timeout_s),
            )
        except httpx.HTTPError as err:
            raise TransientDeliveryError(
                f"{self._channel} provider {type(err).__name__}: {err}"
            ) from err
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = f"{self._channel} provider answered {status}: {response.text[:200]}"
        if status >= 500 or status in _RETRYABLE_STATUS:
            raise TransientDeliveryError(detail)
        raise PermanentDeliveryError(detail)


class GuardedSender:
    """A circuit breaker around a sender: transient failures open it, then calls are
    refused with :class:`CircuitOpenError` until ``reset_after`` seconds passed."""

    def __init__(
        self,
        name: str,
        inner: Sender,
        *,
        failure_threshold: int,
        reset_after: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._inner = inner
        self._threshold = failure_threshold
        self._reset_after = reset_after
        self._monotonic = monotonic
        self.breaker = Breaker()

    async def send(self, message: OutgoingMessage) -> None:
        now = self._monotonic()
        self.breaker, allowed = breaker_allow(self.breaker, now, self._reset_after)
        if not allowed:
            wait = breaker_retry_after(self.breaker, now, self._reset_after)
            raise CircuitOpenError(f"{self.name} circuit open", retry_after=max(wait, 1.0))
        ok = False
        try:
            await self._inner.send(message)
            ok = True
        except PermanentDeliveryError:
            ok = True  # the dependency answered; the message itself is at fault
            raise
        finally:
            self.breaker = breaker_record(self.breaker, ok, self._monotonic(), self._threshold)
