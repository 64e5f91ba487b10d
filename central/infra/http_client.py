"""Outbound HTTP with a timeout, retries with backoff and a circuit breaker per target.

Used by the gateway to reach services run separately, and by anything else that calls
another service or a provider over HTTP. Errors are translated once, here, into
:class:`Unavailable` (the target is down or refusing: degrade the answer).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

import httpx
import structlog

from central.infra.resilience import (
    Breaker,
    ResilienceSettings,
    breaker_allow,
    breaker_record,
    breaker_retry_after,
)

log = structlog.get_logger("central.http")

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class Unavailable(Exception):
    """The target cannot answer now; ``retry_after`` seconds is a fair wait."""

    def __init__(self, target: str, reason: str, retry_after: float = 1.0) -> None:
        super().__init__(f"{target} unavailable: {reason}")
        self.target = target
        self.reason = reason
        self.retry_after = retry_after


class ResilientClient:
    """Calls per target (a service's name), each with its own breaker and its own pool of
    at most ``max_connections``: a storm of uploads to sync cannot take the connections
    the reads of parking need."""

    def __init__(
        self,
        settings: ResilienceSettings,
        transport: httpx.AsyncBaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._breakers: dict[str, Breaker] = {}
        self._monotonic = monotonic

    def breaker(self, target: str) -> Breaker:
        return self._breakers.get(target, Breaker())

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    def _client(self, target: str) -> httpx.AsyncClient:
        client = self._clients.get(target)
        if client is None:
            limit = self._settings.max_connections
            client = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(self._settings.timeout_s),
                limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
                follow_redirects=False,
            )
            self._clients[target] = client
        return client

    @property
    def settings(self) -> ResilienceSettings:
        return self._settings

    async def request(
        self,
        target: str,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        timeout_s: float | None = None,
    ) -> httpx.Response:
        """Send with retries; responses of any status are returned, 5xx counts as a failure
        for the breaker, and so do connection failures and answers later than the timeout
        (``timeout_s``, else the settings'); a slow answer within it is a success. Raises
        :class:`Unavailable` when no answer could be had."""
        s = self._settings
        timeout = timeout_s or s.timeout_s
        attempts = 1 + s.retries
        last_error = "no attempt"
        retry_after = 1.0
        for attempt in range(1, attempts + 1):
            now = self._monotonic()
            breaker, allowed = breaker_allow(self.breaker(target), now, s.breaker_reset_s)
            self._breakers[target] = breaker
            if not allowed:
                raise Unavailable(
                    target,
                    "circuit open",
                    retry_after=max(1.0, breaker_retry_after(breaker, now, s.breaker_reset_s)),
                )
            try:
                response = await self._client(target).request(
                    method,
                    url,
                    headers=headers,
                    content=content,
                    # waiting for a free connection never longer than an ordinary call:
                    # a saturated pool sheds load at once rather than after a long timeout
                    timeout=httpx.Timeout(timeout, pool=min(timeout, s.timeout_s)),
                )
            except httpx.PoolTimeout as err:
                # every connection to the target busy for the whole timeout: this process is
                # saturated, the target is not known to fail (the breaker is not told)
                self._release_trial(target)
                raise Unavailable(target, f"busy: {err!r}", retry_after=timeout) from err
            except httpx.TransportError as err:
                self._record(target, ok=False)
                last_error = f"{type(err).__name__}: {err}"
                # a request that may have reached the target is only repeated if idempotent
                reached = not isinstance(err, httpx.ConnectError | httpx.ConnectTimeout)
                if isinstance(err, httpx.TimeoutException) and reached:
                    retry_after = timeout  # it took longer than that: give it as long
                if attempt == attempts or (reached and method.upper() not in IDEMPOTENT):
                    break
                log.warning("http.retry", target=target, attempt=attempt, error=last_error)
                await asyncio.sleep(s.retry_delay(attempt))
                continue
            # a 503 with Retry-After is the target shedding load on purpose, not failing
            shedding = response.status_code == 503 and "retry-after" in response.headers
            self._record(target, ok=response.status_code < 500 or shedding)
            return response
        raise Unavailable(target, last_error, retry_after=retry_after)

    def _release_trial(self, target: str) -> None:
        """A half-open breaker's trial that never reached the target: let another try."""
        breaker = self.breaker(target)
        if breaker.mode == "half_open":
            self._breakers[target] = replace(breaker, trial_in_flight=False)

    def _record(self, target: str, ok: bool) -> None:
        breaker = breaker_record(
            self.breaker(target), ok, self._monotonic(), self._settings.breaker_failures
        )
        if breaker.mode == "open" and self.breaker(target).mode != "open":
            log.warning("http.breaker.opened", target=target, failures=breaker.failures)
        self._breakers[target] = breaker
