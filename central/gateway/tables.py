"""The gateway's own tables: API keys (only their hashes) and who owns which vehicle.

The vehicle registry lives here because it is part of a driver key's subject: the gateway
resolves it once per key (cached) and forwards it with each request, so no service has
to read another's tables to know whose a vehicle is.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, MetaData, String, Table

from central.infra.db import UTCDateTime

metadata = MetaData()

api_keys = Table(
    "gateway_api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("secret_hash", String(64), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("site_id", String(64), nullable=True),
    Column("user_id", String(64), nullable=True),
    Column("name", String(128), nullable=False, server_default=""),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Index("ix_gateway_api_keys_site", "site_id"),
    Index("ix_gateway_api_keys_user", "user_id"),
)

vehicles = Table(
    "gateway_vehicles",
    metadata,
    Column("vehicle_id", String(64), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_gateway_vehicles_user", "user_id"),
)
