"""The spacing of charger state publications, and the names they are published under."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge.core.charger_states import Spacing
from edge.core.homeassistant import topic_level
from edge.core.ids import CHARGER_ID_PATTERN
from edge.core.topics import charger_topic_level, evse_state_topic

EVERY = 5.0

# (key, seconds since the previous offer, urgent); quarter seconds add up without rounding
offers = st.lists(
    st.tuples(st.sampled_from("ab"), st.integers(0, 48).map(lambda q: q / 4), st.booleans()),
    max_size=40,
)


@given(offers)
def test_the_latest_value_always_goes_out_and_routine_ones_are_spaced(
    script: list[tuple[str, float, bool]],
) -> None:
    spacing: Spacing[str] = Spacing(EVERY)
    now = 0.0
    offered: dict[str, int] = {}  # key -> number of the latest value offered
    published: dict[str, int] = {}  # key -> number of the latest value published
    routine_at: dict[str, float] = {}  # key -> when the last publication went

    def send(key: str, urgent: bool) -> None:
        if not urgent and key in routine_at:
            assert now - routine_at[key] >= EVERY
        routine_at[key] = now
        published[key] = offered[key]

    for number, (key, step, urgent) in enumerate(script):
        due_before = spacing.next_due()
        if due_before is not None and due_before <= now + step:
            now = due_before  # the daemon's timer fires first
            for held in spacing.due(now):
                send(held, urgent=False)
        now += step
        offered[key] = number
        if spacing.offer(key, now, urgent=urgent):
            send(key, urgent)
    while (due := spacing.next_due()) is not None:
        now = due
        for held in spacing.due(now):
            send(held, urgent=False)
    assert published == offered


def test_a_charger_id_is_one_topic_level_and_stays_apart_from_others() -> None:
    assert "+" in CHARGER_ID_PATTERN  # allowed in an OCPP identity, a wildcard in MQTT
    assert charger_topic_level("CP+1") == "CP%2B1"
    assert (
        evse_state_topic("s", "a+b|c@d.e*f=g", 2)
        == "evpark/s/chargers/a%2Bb|c@d.e*f=g/evses/2/state"
    )
    assert charger_topic_level("CP-1") == "CP-1"


def test_home_assistant_names_keep_ids_apart() -> None:
    assert topic_level("slot_A1") == "slot_A1"
    cleaned = {topic_level(text) for text in ("CP.1", "CP_1", "CP+1", "CP|1")}
    assert len(cleaned) == 4
    assert all(set(level) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
               for level in cleaned)  # fmt: skip
