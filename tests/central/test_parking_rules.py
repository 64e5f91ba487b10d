"""Reservation rules without I/O: overlap, slot choice, expiry, status counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.parking import reservations as rules

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)


def booking(
    rid: str, slot: str, start: datetime, end: datetime, status: str = "booked", vehicle: str = "V0"
) -> rules.Booking:
    return rules.Booking(rid, slot, vehicle, start, end, status)


SLOTS = [
    rules.Slot("A1", "ev", "free"),
    rules.Slot("A2", "ev", "occupied"),
    rules.Slot("B1", "standard", "free"),
    rules.Slot("B2", "standard", "free", out_of_service=True),
]


def test_windows_touching_at_an_end_do_not_overlap() -> None:
    assert not rules.overlaps(NOW, NOW + H, NOW + H, NOW + 2 * H)
    assert rules.overlaps(NOW, NOW + H, NOW + H / 2, NOW + 2 * H)


def test_a_slot_of_the_type_that_is_free_now_is_chosen() -> None:
    req = rules.Request("V1", NOW, NOW + H, slot_type="ev")
    assert rules.choose_slot(req, SLOTS, [], [], NOW).slot_id == "A1"


def test_an_occupied_slot_is_not_booked_for_now_but_is_for_later() -> None:
    taken = [booking("r1", "A1", NOW, NOW + H)]
    now_req = rules.Request("V1", NOW, NOW + H, slot_type="ev")
    with pytest.raises(rules.NoSlotAvailable):
        rules.choose_slot(now_req, SLOTS, taken, [], NOW)
    later = rules.Request("V1", NOW + 3 * H, NOW + 4 * H, slot_type="ev")
    assert rules.choose_slot(later, SLOTS, taken, [], NOW).slot_id == "A1"


def test_no_double_booking_of_a_given_slot() -> None:
    taken = [booking("r1", "B1", NOW + H, NOW + 2 * H)]
    req = rules.Request("V1", NOW + H / 2, NOW + 3 * H / 2, slot_id="B1")
    with pytest.raises(rules.NoSlotAvailable):
        rules.choose_slot(req, SLOTS, taken, [], NOW)
    # a finished reservation does not hold the slot
    done = [booking("r1", "B1", NOW + H, NOW + 2 * H, status="cancelled")]
    assert rules.choose_slot(req, SLOTS, done, [], NOW).slot_id == "B1"


def test_a_vehicle_cannot_hold_two_overlapping_reservations() -> None:
    mine = [booking("r9", "A1", NOW, NOW + H, vehicle="V1")]
    req = rules.Request("V1", NOW + H / 2, NOW + 2 * H, slot_type="standard")
    with pytest.raises(rules.VehicleAlreadyBooked):
        rules.choose_slot(req, SLOTS, [], mine, NOW)


def test_out_of_service_and_unknown_slots() -> None:
    with pytest.raises(rules.NoSlotAvailable):
        rules.choose_slot(rules.Request("V", NOW, NOW + H, slot_id="B2"), SLOTS, [], [], NOW)
    with pytest.raises(rules.NoSlotAvailable, match="no slot Z9"):
        rules.choose_slot(rules.Request("V", NOW, NOW + H, slot_id="Z9"), SLOTS, [], [], NOW)
    with pytest.raises(rules.NoSlotAvailable, match="no motorcycle slots"):
        rules.choose_slot(
            rules.Request("V", NOW, NOW + H, slot_type="motorcycle"), SLOTS, [], [], NOW
        )


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (NOW - H, NOW, "in the past"),
        (NOW, NOW + timedelta(minutes=2), "at least 5 minutes"),
        (NOW, NOW + 30 * H, "at most 24 hours"),
        (NOW + timedelta(days=200), NOW + timedelta(days=200) + H, "days ahead"),
    ],
)
def test_bad_windows_are_refused(start: datetime, end: datetime, message: str) -> None:
    with pytest.raises(rules.InvalidWindow, match=message):
        rules.check_window(start, end, NOW, max_hours=24)


def test_unused_reservations_expire_after_the_hold() -> None:
    hold = timedelta(minutes=15)
    b = booking("r1", "A1", NOW, NOW + 2 * H, status="confirmed")
    assert not rules.is_due_for_expiry(b, NOW + timedelta(minutes=14), hold)
    assert rules.is_due_for_expiry(b, NOW + timedelta(minutes=15), hold)
    active = booking("r1", "A1", NOW, NOW + 2 * H, status="active")
    assert not rules.is_due_for_expiry(active, NOW + 3 * H, hold)
    short = booking("r2", "A1", NOW, NOW + timedelta(minutes=10))
    assert rules.is_due_for_expiry(short, NOW + timedelta(minutes=10), hold)


def test_status_counts_per_type() -> None:
    counts = {
        c.slot_type: c
        for c in rules.status_by_type(SLOTS, [booking("r1", "A1", NOW - H, NOW + H)], NOW)
    }
    assert (counts["ev"].total, counts["ev"].reserved, counts["ev"].occupied) == (2, 1, 1)
    assert (counts["standard"].free, counts["standard"].out_of_service) == (1, 1)


def test_release_reasons_map_to_final_statuses() -> None:
    assert rules.status_after_release("expired") == "expired"
    assert rules.status_after_release("departed") == "completed"
    assert rules.status_after_release("cancelled_by_driver") == "cancelled"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 40),  # start, in 15-minute steps
            st.integers(1, 12),  # length in 15-minute steps
            st.sampled_from(["ev", "standard", None]),
            st.integers(0, 5),  # vehicle
        ),
        max_size=30,
    )
)
def test_accepted_bookings_never_overlap(requests: list[tuple[int, int, str | None, int]]) -> None:
    slots = [rules.Slot(f"S{i}", "ev" if i < 2 else "standard", "free") for i in range(4)]
    accepted: list[rules.Booking] = []
    q = timedelta(minutes=15)
    for n, (start, length, slot_type, vehicle) in enumerate(requests):
        req = rules.Request(
            f"V{vehicle}", NOW + start * q, NOW + (start + length) * q, slot_type=slot_type
        )
        try:
            slot = rules.choose_slot(
                req, slots, accepted, [b for b in accepted if b.vehicle_id == req.vehicle_id], NOW
            )
        except rules.ReservationError:
            continue
        if slot_type is not None:
            assert slot.slot_type == slot_type
        accepted.append(
            rules.Booking(
                f"r{n}", slot.slot_id, req.vehicle_id, req.starts_at, req.ends_at, "booked"
            )
        )
    for i, a in enumerate(accepted):
        for b in accepted[i + 1 :]:
            if a.slot_id == b.slot_id or a.vehicle_id == b.vehicle_id:
                assert not rules.overlaps(a.starts_at, a.ends_at, b.starts_at, b.ends_at)
