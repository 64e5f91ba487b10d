"""Settings of the analytics service (``CentralSettings.analytics`` once the integrator
adds the field; until then the defaults below apply)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AnalyticsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    site_stale_s: float = Field(
        default=300.0, gt=0, description="a site silent this long is reported 'stale'"
    )
    bus_lag_warn_s: float = Field(
        default=60.0,
        gt=0,
        description="bus lag above this degrades /metrics/health: analytics' own, or the age "
        "of any consumer's oldest unapplied event",
    )
    bus_backlog_warn: int = Field(
        default=10_000,
        ge=1,
        description="events not yet applied by any one consumer above this degrade /metrics/health",
    )
    probe_timeout_s: float = Field(default=2.0, gt=0, description="per service health probe")
    max_range_days: int = Field(default=400, ge=1, description="longest query period")
    max_hour_buckets: int = Field(default=24 * 62, ge=24, description="hour granularity limit")
