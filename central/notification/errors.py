"""The notification service's error hierarchy.

Adapters translate library errors into these, once, at their boundary (``raise ... from
err``); the queue worker decides from the class alone whether to retry or dead-letter.
"""

from __future__ import annotations


class NotificationError(Exception):
    """Base of the notification service's errors."""


class DeliveryError(NotificationError):
    """A channel could not deliver a message."""


class TransientDeliveryError(DeliveryError):
    """Worth retrying later: timeouts, connection errors, 5xx / 4xx SMTP replies, HTTP 429/5xx."""


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help: a refused recipient, HTTP 4xx, a channel not configured."""


class CircuitOpenError(TransientDeliveryError):
    """The channel's circuit breaker is open: the call was not attempted."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
