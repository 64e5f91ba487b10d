"""How events travel on NATS: a topic's events of one upload in as few messages as fit,
each message named by its events (JetStream's dedupe), read back whole or, for a consumer
of a few types, only those; anything else is refused as unreadable, never a crash."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from central.infra.bus_nats import BATCH_HEADER, MESSAGE_EVENTS, pack, unpack
from contract.envelope import CloudEvent

T = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def event(n: int, type_: str = "charging.progress", size: int = 0) -> CloudEvent:
    return CloudEvent(
        id=f"ev-{n}",
        source="/sites/north",
        type=type_,
        time=T,
        sequence=n,
        data={"session_id": "s1", "energy_wh": n, "pad": "x" * size},
    )


def test_events_travel_in_order_in_as_few_messages_as_fit() -> None:
    events = [event(n) for n in range(1, 1201)]
    messages = pack(events)
    assert len(messages) == -(-len(events) // MESSAGE_EVENTS)  # 500 a message at most
    back = [e for payload, headers in messages for e in unpack(payload, headers)]
    assert back == events
    first = messages[0][1]
    assert (first["Nats-Msg-Id"], first[BATCH_HEADER]) == ("ev-1..ev-500/500", "500")


def test_a_message_stays_under_the_size_limit_and_one_event_travels_as_itself() -> None:
    big = [event(n, size=3000) for n in range(1, 11)]
    messages = pack(big, limit=8000)
    assert all(len(payload) <= 8000 for payload, _ in messages)
    assert [e for p, h in messages for e in unpack(p, h)] == big
    (single,) = pack([event(7)])
    assert single[1] == {"Nats-Msg-Id": "ev-7"}
    assert unpack(*single) == [event(7)]


def test_a_consumer_of_a_few_types_reads_only_those() -> None:
    events = [event(1), event(2, "command.result"), event(3), event(4, "charging.started")]
    ((payload, headers),) = pack(events)
    wanted = frozenset({"command.result", "charging.started"})
    assert unpack(payload, headers, wanted) == [events[1], events[3]]
    assert unpack(payload, headers, frozenset({"parking.occupied"})) == []


@pytest.mark.parametrize(
    ("payload", "headers"),
    [
        (b"not json", None),
        (b"[1, 2]", {BATCH_HEADER: "2"}),
        (b'{"events": 3}', {BATCH_HEADER: "1"}),
        (b'{"events": [{"type": "command.result", "id": ""}]}', {BATCH_HEADER: "1"}),
        (b'{"type": "command.result"}', None),
    ],
)
def test_what_is_not_a_message_of_events_is_unreadable(
    payload: bytes, headers: dict[str, str] | None
) -> None:
    for types in (None, frozenset({"command.result"})):
        with pytest.raises(ValueError):  # noqa: PT011 - pydantic's and ours alike
            unpack(payload, headers, types)
