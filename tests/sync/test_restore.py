"""A site restored from a backup taken under load resumes its sync with central: nothing
central held is lost or changed, nothing is stored twice, the site's new events follow on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from edge.cli import central_last_sequence
from edge.storage.backup import backup, restore
from tests.polling import eventually
from tests.sync.conftest import SiteRig


async def park(site: SiteRig, times: int) -> None:
    """Visits on S1: each arrival and departure is an event for central."""
    assert site.sensors is not None
    for _ in range(times):
        await site.sensors.arrive("S1")
        await asyncio.sleep(0.02)
        await site.sensors.leave("S1")
        await asyncio.sleep(0.02)


async def drained(site: SiteRig) -> None:
    async def empty() -> bool:
        return await site.backlog() == 0

    await eventually(empty, "the edge's backlog drained into central", within=30)


async def test_a_restored_backup_resumes_the_outbox_without_loss_or_duplicates(
    site: SiteRig,
) -> None:
    database = site.config().storage.database
    target = site.data_dir.parent / "site.bak"
    await park(site, 3)
    async with asyncio.TaskGroup() as tasks:  # the backup is taken while events are written
        tasks.create_task(park(site, 10))
        await asyncio.sleep(0.1)
        saved = await asyncio.to_thread(backup, database, target)
    assert saved.last_sequence > 0
    await park(site, 5)  # made after the backup: central gets them, the backup has not
    await drained(site)
    before = await site.central.stored_events()
    assert before[-1][0] > saved.last_sequence

    await site.stop()
    held = await asyncio.to_thread(central_last_sequence, site.config())
    assert held == before[-1][0]
    report = restore(database, saved.path, datetime.now(UTC), held)
    assert report.kept_aside is not None
    assert report.next_sequence == held + 1
    await site.start()
    await park(site, 4)
    await drained(site)

    outbox: list[tuple[int, str, str]] = []
    after: list[tuple[int, str, str]] = []

    async def caught_up() -> bool:  # chargers may still report: read the site, then central
        nonlocal outbox, after
        outbox = await site.outbox()
        after = await site.central.stored_events()
        return after[-1][0] >= outbox[-1][0]

    await eventually(caught_up, "central holds every event of the restored site")
    assert after[: len(before)] == before  # nothing central held is lost or changed
    assert [s for s, _, _ in after] == list(range(1, len(after) + 1))  # no gap
    assert len({i for _, i, _ in after}) == len(after)  # nothing twice
    restored = [e for e in outbox if e[0] <= saved.last_sequence]
    new = [e for e in outbox if e[0] > saved.last_sequence]
    assert restored == before[: len(restored)]  # the backup's events are central's
    assert [s for s, _, _ in new] == list(range(held + 1, held + 1 + len(new)))
    assert len(new) >= 8  # the four visits after the restore (and charger statuses)
    assert after[len(before) : len(before) + len(new)] == new  # each reached central once


async def test_a_backup_restored_without_asking_central_numbers_new_events_after_centrals(
    site: SiteRig,
) -> None:
    """``restore --offline``: the site learns at its first upload that central holds more
    than it ever wrote, and numbers its next events after central's, so none is taken for
    an event central already has (which would lose it)."""
    database = site.config().storage.database
    await park(site, 2)
    await drained(site)
    saved = await asyncio.to_thread(backup, database, site.data_dir.parent / "site.bak")
    await park(site, 5)  # central has these; the backup has not
    await drained(site)
    before = await site.central.stored_events()
    await site.stop()
    restore(database, saved.path, datetime.now(UTC), None)
    await site.start()
    await drained(site)  # the site hears of central's events and moves past them
    await park(site, 3)
    await drained(site)
    outbox = await site.outbox()
    after = await site.central.stored_events()
    assert after[: len(before)] == before  # nothing central held is changed
    made_after = outbox[-6:]  # the three visits after the restore
    assert all(s > before[-1][0] for s, _, _ in made_after)
    assert set(made_after) <= set(after)  # each reached central


async def test_events_written_before_central_answers_move_past_centrals(site: SiteRig) -> None:
    """``restore --offline`` and central away when the site starts again: the events the
    site writes meanwhile get the sequences central holds under the events made after the
    backup. At its first contact the site asks central where it stands and moves them past
    that (it used to send them as they were: refused as conflicts, for ever)."""
    database = site.config().storage.database
    await park(site, 2)
    await drained(site)
    saved = await asyncio.to_thread(backup, database, site.data_dir.parent / "site.bak")
    await park(site, 5)
    await drained(site)
    before = await site.central.stored_events()
    await site.stop()
    restore(database, saved.path, datetime.now(UTC), None)
    await site.central.stop()
    await site.start()
    await park(site, 3)  # numbered from the backup's last sequence on
    written = [e for e in await site.outbox() if e[0] > saved.last_sequence]
    assert written
    assert written[0][0] <= before[-1][0]  # they claim sequences central holds
    await site.central.start()
    await drained(site)
    after = await site.central.stored_events()
    assert after[: len(before)] == before  # nothing central held is changed
    assert [s for s, _, _ in after] == list(range(1, len(after) + 1))  # no gap
    moved = {event_id: sequence for sequence, event_id, _ in after[len(before) :]}
    assert {event_id for _, event_id, _ in written} <= set(moved)  # each reached central once
    ordered = [moved[event_id] for _, event_id, _ in written]
    assert ordered == sorted(ordered)  # in their order
    assert ordered[0] > before[-1][0]  # after central's
