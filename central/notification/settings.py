"""Settings of the notification service: ``CentralSettings.notification``.

Environment variables use the prefix and nesting of :mod:`central.settings`, e.g.
``EVPARK_CENTRAL_NOTIFICATION__SMTP__HOST=mail.example.com`` or, in the TOML file::

    [notification.smtp]
    host = "mail.example.com"
    port = 587
    starttls = true
    username = "evpark"
    password = "..."
    sender = "evpark <noreply@example.com>"

    [notification.sms]
    url = "https://sms.example.com/v1/messages"
    token = "..."
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from central.notification.model import URGENT_EVENT_TYPES
from central.notification.retry import RetryPolicy


class SmtpSettings(BaseModel):
    """Email over SMTP. ``host`` empty: email is not configured (messages dead-letter)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    host: str = ""
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = "evpark <noreply@localhost>"
    use_tls: bool = Field(default=False, description="implicit TLS (SMTPS, usually port 465)")
    starttls: bool = Field(default=False, description="upgrade with STARTTLS (usually port 587)")
    username: str = ""
    password: SecretStr = SecretStr("")
    timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _one_tls_mode(self) -> SmtpSettings:
        if self.use_tls and self.starttls:
            raise ValueError("choose use_tls (implicit TLS) or starttls, not both")
        return self


class HttpProviderSettings(BaseModel):
    """An HTTP provider (SMS or push): JSON ``POST`` to ``url`` with a bearer ``token``.

    ``url`` empty: the channel is not configured (its messages dead-letter).
    """

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    url: str = ""
    token: SecretStr = SecretStr("")
    timeout_s: float = Field(default=5.0, gt=0)


class NotificationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    sms: HttpProviderSettings = Field(default_factory=HttpProviderSettings)
    push: HttpProviderSettings = Field(default_factory=HttpProviderSettings)

    default_locale: str = "en"
    urgent_event_types: frozenset[str] = Field(
        default=URGENT_EVENT_TYPES, description="these bypass quiet hours"
    )

    # the delivery queue
    max_attempts: int = Field(default=6, ge=1, description="then the message is dead-lettered")
    retry_base_s: float = Field(default=30.0, gt=0)
    retry_max_s: float = Field(default=3600.0, gt=0)
    retry_jitter: float = Field(
        default=0.2, ge=0, lt=1, description="a random share up to this is taken off each delay"
    )
    poll_interval_s: float = Field(default=1.0, gt=0, description="queue worker's idle poll")
    batch_size: int = Field(default=20, ge=1)
    lease_s: float = Field(
        default=60.0, gt=0, description="a claimed message is retried after this if unreported"
    )

    # the circuit breaker of each channel
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset_s: float = Field(default=30.0, gt=0)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            base_delay=timedelta(seconds=self.retry_base_s),
            max_delay=timedelta(seconds=max(self.retry_max_s, self.retry_base_s)),
            jitter=self.retry_jitter,
        )
