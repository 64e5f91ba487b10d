"""Central's configuration: one :class:`CentralSettings`, built in ``main()`` and passed down.

Sources, strongest first: keyword arguments (the CLI), environment variables with the
prefix ``EVPARK_CENTRAL_`` (nested fields with ``__``, e.g.
``EVPARK_CENTRAL_RATE_LIMIT__DRIVER_PER_MINUTE=120``), secret files (``/run/secrets``,
``$CREDENTIALS_DIRECTORY``), an optional TOML file named by ``EVPARK_CENTRAL_CONFIG``, then
the defaults below (:mod:`central.settings_sources`). An unknown key anywhere is an error
naming it: a typo must not start central on its defaults.

Defaults run everything in one process on SQLite files under ``data_dir`` with an
in-process bus and cache. At scale: ``database_url`` a PostgreSQL DSN
(``postgresql+asyncpg://user@host/db``; a ``{service}`` placeholder gives each service its
own database), ``bus_url=nats://host:4222``, ``cache_url=redis://host:6379/0``, and
``service_urls`` telling the gateway where each service runs.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings.exceptions import SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from central.analytics.settings import AnalyticsSettings
from central.infra.resilience import ResilienceSettings
from central.notification.settings import NotificationSettings
from central.reported_times import ReportedTimeSettings
from central.settings_sources import (
    CentralConfigError,
    config_file,
    config_file_problem,
    secret_dirs,
    unknown_environment,
)
from common.settings_problems import validation_problems

PLACEHOLDERS = frozenset({"", "change-me", "changeme", "secret"})
DATABASE_DRIVERS = frozenset({"sqlite+aiosqlite", "postgresql+asyncpg"})

SERVICE_PORTS: dict[str, int] = {
    "parking": 3001,
    "charging": 3002,
    "notification": 3003,
    "analytics": 3004,
    "sync": 3005,
}


class RateLimitSettings(BaseModel):
    """Token bucket per API key: ``<scope>_per_minute`` refill, ``burst`` bucket size.

    Failed authentications (no key, a wrong or revoked key) have a bucket per client
    address: ``invalid_key_per_minute`` refill, ``invalid_key_burst`` size; attempts in
    flight count (see :class:`central.gateway.ratelimit.FailureLimiter`). An address with
    an empty bucket gets 429 before any key lookup (keys verified recently still pass:
    they cost no lookup)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    enabled: bool = True
    driver_per_minute: float = Field(default=120, gt=0)
    operator_per_minute: float = Field(default=600, gt=0)
    site_per_minute: float = Field(default=1200, gt=0)
    burst: int = Field(default=60, ge=1)
    invalid_key_per_minute: float = Field(default=30, gt=0)
    invalid_key_burst: int = Field(default=20, ge=1)

    def per_second(self, scope: str) -> float:
        per_minute: float = getattr(self, f"{scope}_per_minute", self.driver_per_minute)
        return per_minute / 60.0


class BodyLimitSettings(BaseModel):
    """Request body limits in bytes, enforced while the body is read (before parsing):
    ``sync`` for the edges' event batches (an edge sends at most 5,000 events a batch,
    a few MB inflated), ``config`` for operators' lot configuration (up to 5,000 slots),
    ``default`` for every other route. A gzip body counts inflated."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    default: int = Field(default=64 * 1024, ge=1024)
    config: int = Field(default=1024 * 1024, ge=1024)
    sync: int = Field(default=16 * 1024 * 1024, ge=1024)

    def for_path(self, path: str) -> int:
        if path.startswith("/sync/"):
            return self.sync
        if path.startswith("/parking/lots/"):
            return self.config
        return self.default


class CentralSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EVPARK_CENTRAL_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("data/central")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL for every service; '{service}' is replaced by the "
        "service name. Unset: sqlite+aiosqlite:///<data_dir>/<service>.db",
    )
    database_urls: dict[str, str] = Field(
        default_factory=dict, description="per-service override of database_url"
    )
    database_pool_size: int = Field(
        default=10,
        ge=1,
        le=500,
        description="PostgreSQL connections each service process keeps open (its pool)",
    )
    database_max_overflow: int = Field(
        default=10, ge=0, le=500, description="connections opened beyond the pool at a peak"
    )
    database_pre_ping: bool = Field(
        default=True,
        description="test a pooled connection before each use (one round trip per "
        "transaction; off: a connection lost to a database restart fails one transaction, "
        "which is retried)",
    )
    bus_url: str = "memory://"
    bus_namespace: str = Field(
        default="",
        pattern=r"^[a-z0-9_]*$",
        description="prefix of NATS subjects and streams (several installations, or test "
        "runs, on one NATS server)",
    )
    bus_stream_replicas: int = Field(
        default=1, ge=1, le=5, description="copies of each NATS stream (JetStream cluster nodes)"
    )
    bus_stream_max_age_days: float = Field(
        default=7.0, gt=0, description="how long a NATS stream keeps events"
    )
    bus_batch_size: int = Field(
        default=500,
        ge=1,
        le=5000,
        description="events a consumer takes and applies at once (one transaction)",
    )
    bus_ack_wait_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="how long NATS waits for a consumer's acknowledgement before it "
        "hands the event to another replica (a killed consumer's batch)",
    )
    cache_url: str = "memory://"
    cache_namespace: str = Field(default="evpark:", max_length=64)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    service_ports: dict[str, int] = Field(default_factory=lambda: dict(SERVICE_PORTS))
    service_urls: dict[str, str] = Field(
        default_factory=dict,
        description="gateway routing: service name -> base URL; services not listed run "
        "in the gateway's process",
    )
    internal_token: str = Field(
        default="",
        description="shared secret the gateway sends to services run separately; "
        "services refuse identity headers without it when set",
    )

    metrics_token: str = Field(
        default="",
        description="when set, /metrics answers only 'Authorization: Bearer <token>'",
    )

    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    body_limits: BodyLimitSettings = Field(default_factory=BodyLimitSettings)
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses or networks (CIDR) of reverse proxies in front of the "
        "gateway; only from these is X-Forwarded-For believed for the client address",
    )
    resilience: ResilienceSettings = Field(default_factory=ResilienceSettings)

    # parking
    reservation_hold_minutes: int = Field(
        default=15, ge=0, description="an unused reservation expires this long after its start"
    )
    max_reservation_hours: int = Field(default=24, ge=1)
    expiry_interval_s: float = Field(default=30.0, gt=0)
    # commands to sites
    command_ttl_s: int = Field(default=300, ge=1)
    # a site whose edge has not been in contact this long counts as offline
    site_offline_after_s: float = Field(default=15.0, gt=0)
    max_command_wait_s: float = Field(default=30.0, ge=0)
    # caches
    status_cache_ttl_s: float = Field(default=30.0, ge=0)
    rates_cache_ttl_s: float = Field(default=300.0, ge=0)
    # sync
    republish_interval_s: float = Field(default=5.0, gt=0)
    # uploads a sync process stores at once, and how many more may wait: beyond, 503 with
    # Retry-After (overloaded, it finishes some uploads instead of slowing all of them)
    ingest_concurrency: int = Field(default=8, ge=1, le=1000)
    ingest_queue: int = Field(default=64, ge=0, le=100_000)

    notification: NotificationSettings = Field(default_factory=NotificationSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    # how far the times sites report are believed (docs/api.md "Times a site reports")
    reported_times: ReportedTimeSettings = Field(default_factory=ReportedTimeSettings)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        return None if value is None else _database(value)

    @field_validator("database_urls")
    @classmethod
    def _database_urls(cls, value: dict[str, str]) -> dict[str, str]:
        return {name: _database(url) for name, url in value.items()}

    @field_validator("bus_url")
    @classmethod
    def _bus_scheme(cls, value: str) -> str:
        if value.startswith("memory://"):
            return value
        if not value.startswith(("nats://", "tls://")) or not _has_host(value):
            raise ValueError("bus_url must be memory:// or nats://host:port")
        return value

    @field_validator("cache_url")
    @classmethod
    def _cache_scheme(cls, value: str) -> str:
        if value.startswith("memory://"):
            return value
        if not value.startswith(("redis://", "rediss://")) or not _has_host(value):
            raise ValueError("cache_url must be memory:// or redis://host:port/db")
        db = urlsplit(value).path.strip("/")
        if db and not db.isdigit():
            raise ValueError(f"cache_url: the database after the host is a number, not {db!r}")
        return value

    @field_validator("service_urls")
    @classmethod
    def _service_urls(cls, value: dict[str, str]) -> dict[str, str]:
        for name, url in value.items():
            if not url.startswith(("http://", "https://")) or not _has_host(url):
                raise ValueError(f"{name}: {url!r} is not an http(s)://host:port URL")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as err:
                raise ValueError(f"trusted_proxies: {item!r} is not an address or network") from err
        return value

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> CentralSettings:
        if self.environment == "production" and self.internal_token in PLACEHOLDERS:
            raise ValueError(
                "internal_token must be set to a real secret in production "
                "(EVPARK_CENTRAL_INTERNAL_TOKEN)"
            )
        return self

    def engine_options(self) -> dict[str, Any]:
        """The connection pool's settings, for :func:`central.infra.db.create_engine`."""
        return {
            "pool_size": self.database_pool_size,
            "max_overflow": self.database_max_overflow,
            "pool_pre_ping": self.database_pre_ping,
        }

    def database_url_for(self, service: str) -> str:
        if service in self.database_urls:
            return self.database_urls[service]
        if self.database_url:
            return self.database_url.replace("{service}", service)
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{service}.db').resolve()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        secrets = NestedSecretsSettingsSource(
            file_secret_settings,
            secrets_dir=getattr(file_secret_settings, "secrets_dir", None)
            or secret_dirs(os.environ),
            secrets_dir_missing="ok",
            secrets_prefix="",  # the file is named as the variable is, without the prefix
        )
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, secrets]
        toml_file = settings_cls.model_config.get("toml_file") or config_file(os.environ)
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


def load_settings(
    config: Path | None = None, *, secrets_dirs: list[Path] | None = None, **overrides: Any
) -> CentralSettings:
    """Build the settings from ``overrides`` (the CLI's options; None: not given), the
    environment, secret files (``secrets_dirs``, default :func:`secret_dirs`) and the TOML
    file (``config``, default ``$EVPARK_CENTRAL_CONFIG``). Raise
    :class:`CentralConfigError` with every problem found."""
    problems = unknown_environment(os.environ, CentralSettings.model_fields)
    toml_file = config or config_file(os.environ)
    if toml_file is not None:
        problem = config_file_problem(toml_file)
        if problem is not None:
            problems.append(problem)
            toml_file = None  # the other sources are still checked: every problem at once

    class _Loaded(CentralSettings):
        model_config = SettingsConfigDict(toml_file=toml_file)

    given = {k: v for k, v in overrides.items() if v is not None}
    if secrets_dirs is not None:
        given["_secrets_dir"] = secrets_dirs
    try:
        settings: CentralSettings = _Loaded(**given)
    except ValidationError as err:
        problems += validation_problems(err)
    except SettingsError as err:  # a secret file that cannot be parsed, a secrets dir too big
        problems.append(("secrets", str(err)))
    if problems:
        raise CentralConfigError(problems)
    return settings


def _database(url: str) -> str:
    try:
        driver = make_url(url).drivername
    except ArgumentError as err:
        raise ValueError(f"not a database URL: {err}") from err
    if driver not in DATABASE_DRIVERS:
        raise ValueError(
            f"database driver {driver!r} is not supported: use postgresql+asyncpg://user@host/db "
            "or sqlite+aiosqlite:///path"
        )
    return url


def _has_host(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it checks it is a number in range
    except ValueError:
        return False
    return bool(parts.hostname)
