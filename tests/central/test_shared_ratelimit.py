"""Gateway replicas share rate limits through Redis: a key gets its burst once across two
gateways, not once per gateway; without Redis each process counts alone; with Redis down
the gateways keep answering on per-process limits and say so once."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from central.infra.buckets_redis import RedisBuckets
from tests.central.conftest import Central
from tests.harness.ports import free_port

BURST = 5
NO_REFILL = {"burst": BURST, "driver_per_minute": 0.001, "enabled": True}


async def _allowed_across(gateways: list[Central], requests: int) -> int:
    """Requests sent in turn to each gateway with one key; how many were not refused."""
    key = await gateways[0].auth("driver")
    allowed = 0
    for n in range(requests):
        r = await gateways[n % len(gateways)].client.get("/parking/slots/S1", headers=key)
        assert r.status_code in (404, 429), r.text
        allowed += r.status_code != 429
    return allowed


async def _two_gateways(
    factory: Callable[..., Any], data_dir: Path, **settings: Any
) -> tuple[AsyncExitStack, list[Central]]:
    stack = AsyncExitStack()
    gateways = [
        await stack.enter_async_context(
            factory(data_dir=data_dir, rate_limit=NO_REFILL, **settings)
        )
        for _ in range(2)
    ]
    return stack, gateways


async def test_two_gateways_on_redis_share_one_limit(
    central_factory: Callable[..., Any], tmp_path: Path, redis_url: str, redis_namespace: str
) -> None:
    stack, gateways = await _two_gateways(
        central_factory, tmp_path / "shared", cache_url=redis_url, cache_namespace=redis_namespace
    )
    async with stack:
        assert await _allowed_across(gateways, 4 * BURST) == BURST


async def test_without_redis_each_gateway_counts_alone(
    central_factory: Callable[..., Any], tmp_path: Path
) -> None:
    stack, gateways = await _two_gateways(central_factory, tmp_path / "shared")
    async with stack:
        assert await _allowed_across(gateways, 4 * BURST) == 2 * BURST


async def test_redis_down_falls_back_to_per_process_limits(
    central_factory: Callable[..., Any], tmp_path: Path
) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with capture_logs() as logs:
        stack, gateways = await _two_gateways(central_factory, tmp_path / "down", cache_url=nobody)
        async with stack:
            assert await _allowed_across(gateways, 4 * BURST) == 2 * BURST
    warnings = [e for e in logs if e["event"] == "ratelimit.redis.unavailable"]
    assert len(warnings) == 2  # once per gateway, not once per request


async def test_a_refund_gives_one_token_back_never_above_the_burst(
    redis_url: str, redis_namespace: str
) -> None:
    buckets = RedisBuckets.from_url(redis_url, redis_namespace)
    try:
        rate, burst = 0.001, 3  # no refill to speak of
        assert await buckets.take("addr:a", rate, burst, cost=-1.0) == 0.0  # full: stays 3
        takes = [await buckets.take("addr:a", rate, burst) for _ in range(4)]
        assert takes[:3] == [0.0] * 3
        assert takes[3] > 0  # empty after 3: the refund did not go above the burst
        await buckets.take("addr:a", rate, burst, cost=-1.0)  # a success gives one back
        assert await buckets.take("addr:a", rate, burst) == 0.0
        assert await buckets.take("addr:a", rate, burst) > 0
    finally:
        await buckets.aclose()
