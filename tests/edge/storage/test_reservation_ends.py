"""The booked departure of a session begun on a reservation: the reservation's end, found
by the OCPP reservation id the charger was given; a cancelled one or one without an end
gives none."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from edge.core.ids import SlotId, ocpp_reservation_id
from edge.storage.slots_sql import reservation_ends, save_reservation
from edge.storage.sqlite import SqliteStore, Unit

AT = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
END = datetime(2026, 12, 2, 17, 30, tzinfo=UTC)


async def test_a_reservation_end_is_found_by_its_ocpp_id(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "s.db") as store:
        unit = Unit()
        save_reservation(unit, SlotId("A1"), "res-kept", END, AT)
        save_reservation(unit, SlotId("A2"), "res-open", None, AT)
        save_reservation(unit, SlotId("A3"), "res-gone", END, AT)
        save_reservation(unit, SlotId("A3"), "res-gone", None, AT, cancelled=True)
        await store.write(unit)
        wanted = {ocpp_reservation_id(r) for r in ("res-kept", "res-open", "res-gone")}
        found = await store.read(lambda c: reservation_ends(c, wanted | {42}))
    assert found == {ocpp_reservation_id("res-kept"): END}
