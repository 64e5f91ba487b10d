"""An overloaded sync ingest finishes the uploads it took and tells the others to come
back (503 with Retry-After) instead of slowing every upload until none ends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from central.sync.admission import Admission, Overloaded
from tests.central.conftest import cloud_event

Factory = Callable[..., Any]


async def test_a_full_queue_turns_uploads_away_at_once() -> None:
    admission = Admission(concurrency=1, queue=1)
    release = asyncio.Event()

    async def upload() -> None:
        async with admission.slot():
            await release.wait()

    async with asyncio.TaskGroup() as tasks:
        first = tasks.create_task(upload())
        await asyncio.sleep(0)
        second = tasks.create_task(upload())  # waits in the queue
        await asyncio.sleep(0)
        with pytest.raises(Overloaded) as turned_away:
            await upload()
        assert turned_away.value.retry_after >= 1
        release.set()
    assert first.done()
    assert second.done()
    async with admission.slot():  # room again
        pass


async def test_uploads_beyond_the_queue_get_503_with_retry_after(
    central_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with central_factory(ingest_concurrency=1, ingest_queue=0) as central:
        sync = central.service("sync")
        stored = sync.ingest
        started, release = asyncio.Event(), asyncio.Event()

        async def slow_ingest(site_id: str, batch: Any) -> Any:
            started.set()
            await release.wait()
            return await stored(site_id, batch)

        monkeypatch.setattr(sync, "ingest", slow_ingest)
        north = await central.auth("site", "north")
        south = await central.auth("site", "south")

        async def upload(site: str, headers: dict[str, str]) -> Any:
            event = cloud_event(site, 1, "sensor.status", {"sensor_id": "s1", "online": True})
            return await central.client.post(
                "/sync/v1/events", json={"events": [event]}, headers=headers
            )

        first = asyncio.create_task(upload("north", north))
        await started.wait()
        turned_away = await upload("south", south)
        assert turned_away.status_code == 503, turned_away.text
        assert int(turned_away.headers["retry-after"]) >= 1
        release.set()
        assert (await first).status_code == 200
        again = await upload("south", south)  # it came back later: stored
        assert (again.status_code, again.json()["stored"]) == (200, 1)
