"""NATS streams get the replicas and retention of the settings, and a stream made with
other settings is brought to them (on the local one-node JetStream: replicas 1; a new
stream of more is refused, with the setting to change). A NATS that does not answer fails
the start instead of hanging it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import nats
import pytest
from structlog.testing import capture_logs

from central.infra.bus_nats import BusUnavailable, NatsBus, StreamRefused, stream_name
from central.infra.bus_url import make_bus
from contract.envelope import CloudEvent
from tests.harness.ports import free_port

TOPIC = "parking.events"


def _event() -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/sites/stream-test",
        type="parking.occupied",
        time=datetime.now(UTC),
        sequence=1,
        data={"slot_id": "S1"},
    )


async def _stream_config(url: str, namespace: str) -> tuple[int, float]:
    nc = await nats.connect(url, connect_timeout=3)
    try:
        info = await nc.jetstream().stream_info(stream_name(f"{namespace}.{TOPIC}"))
    finally:
        await nc.close()
    return info.config.num_replicas or 1, info.config.max_age or 0.0


async def test_a_new_stream_gets_the_configured_retention(
    nats_url: str, nats_namespace: str
) -> None:
    async with make_bus(nats_url, nats_namespace, stream_max_age_s=2 * 86400) as bus:
        await bus.publish(TOPIC, _event())
    assert await _stream_config(nats_url, nats_namespace) == (1, 2 * 86400)


async def test_an_existing_stream_is_updated_to_new_retention(
    nats_url: str, nats_namespace: str
) -> None:
    async with make_bus(nats_url, nats_namespace, stream_max_age_s=2 * 86400) as bus:
        await bus.publish(TOPIC, _event())
    async with make_bus(nats_url, nats_namespace, stream_max_age_s=0.5 * 86400) as bus:
        with capture_logs() as logs:
            await bus.publish(TOPIC, _event())
    assert await _stream_config(nats_url, nats_namespace) == (1, 0.5 * 86400)
    assert [e["event"] for e in logs if e["event"].startswith("bus.nats.stream")] == [
        "bus.nats.stream_updated"
    ]


async def test_replicas_the_server_cannot_hold_are_refused_naming_the_setting(
    nats_url: str, nats_namespace: str
) -> None:
    # one node, not clustered: JetStream refuses a new stream of 3 replicas
    with pytest.raises(ExceptionGroup) as raised:  # the bus's TaskGroup wraps it
        async with make_bus(nats_url, nats_namespace, stream_replicas=3) as bus:
            await bus.publish(TOPIC, _event())
    assert raised.group_contains(StreamRefused, match="setting bus_stream_replicas")


async def test_a_nats_that_does_not_answer_fails_the_start_with_its_setting() -> None:
    nobody = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(BusUnavailable, match="bus_url"):
        async with NatsBus(nobody, first_connect_s=1.0):
            pass  # pragma: no cover - never reached
