"""What a log line or summary may show of an address: everything but its secrets."""

from __future__ import annotations

import pytest

from common.masking import mask_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+asyncpg://evpark:s3cret@db/parking", "postgresql+asyncpg://evpark:***@db/parking"),
        ("postgresql+asyncpg://evpark:p@ss@db:5432/x", "postgresql+asyncpg://evpark:***@db:5432/x"),
        ("postgresql+asyncpg://evpark@db/evpark_{service}", "postgresql+asyncpg://evpark@db/evpark_{service}"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("nats://s3cret@bus:4222", "nats://***@bus:4222"),
        ("nats://user:s3cret@bus:4222", "nats://user:***@bus:4222"),
        ("sqlite+aiosqlite:////var/lib/evpark/parking.db", "sqlite+aiosqlite:////var/lib/evpark/parking.db"),
        ("memory://", "memory://"),
        ("postgresql+asyncpg://db/x?sslmode=require&password=s3cret",
         "postgresql+asyncpg://db/x?sslmode=require&password=***"),
        ("https://push.example/v1?token=s3cret#top", "https://push.example/v1?token=***#top"),
        ("not a url", "not a url"),
    ],
)  # fmt: skip
def test_secrets_are_masked_and_the_rest_kept(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    assert "s3cret" not in mask_url(url)
