"""The sensors of a site (:class:`SensorField`), and `evpark sim sensors` running them.

Vehicle scenarios drive a field::

    async with SensorField.from_config(config, url="mqtt://127.0.0.1:1883") as field:
        await field.arrive("A1")
        await field.leave("A1")
        await field["B1"].go_offline()

``await field.run(duration)`` instead makes random traffic on all slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Self

import structlog

from common.mqtt_url import broker_address
from sim.sensors.sensor import Noise, SimSensor, utc_now
from sim.sensors.site import SiteConfigLike

log = structlog.get_logger("sim.sensors")


class SensorField:
    """The sensors of a site, one per slot that has one."""

    def __init__(
        self,
        site_id: str,
        sensors: Mapping[str, str],
        url: str,
        *,
        seed: int | None = None,
        noise: Noise = Noise(),
        speed: float = 1.0,
        clock: Callable[[], datetime] = utc_now,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        """``sensors``: slot id -> sensor id."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.site_id = site_id
        rng = random.Random(seed)
        address = broker_address(url)
        self._sensors = {
            slot_id: SimSensor(
                site_id=site_id,
                slot_id=slot_id,
                sensor_id=sensor_id,
                address=address,
                rng=random.Random(rng.random()),
                noise=noise,
                speed=speed,
                clock=clock,
                username=username,
                password=password,
            )
            for slot_id, sensor_id in sensors.items()
        }
        self._stack = contextlib.AsyncExitStack()

    @classmethod
    def from_config(
        cls,
        config: SiteConfigLike,
        url: str | None = None,
        *,
        seed: int | None = None,
        noise: Noise = Noise(),
        speed: float = 1.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> SensorField:
        """The slots of ``config`` that have a sensor; ``url`` overrides ``[mqtt] url``."""
        sensors = {slot.id: slot.sensor for slot in config.slots if slot.sensor}
        return cls(
            config.site.id,
            sensors,
            url or config.mqtt.url,
            seed=seed,
            noise=noise,
            speed=speed,
            clock=clock,
            username=config.mqtt.username,
            password=config.mqtt.password,
        )

    def __getitem__(self, slot_id: str) -> SimSensor:
        return self._sensors[slot_id]

    def __iter__(self) -> Iterator[SimSensor]:
        return iter(self._sensors.values())

    def __len__(self) -> int:
        return len(self._sensors)

    async def __aenter__(self) -> Self:
        await self._stack.__aenter__()
        try:
            for sensor in self._sensors.values():
                await self._stack.enter_async_context(sensor)
        except BaseException:
            await self._stack.aclose()
            raise
        log.info("sim.sensors.started", site=self.site_id, sensors=len(self._sensors))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.__aexit__(exc_type, exc, tb)

    async def arrive(
        self, slot_id: str, *, flap: bool | None = None, persist: bool = False
    ) -> None:
        await self._sensors[slot_id].arrive(flap=flap, persist=persist)

    async def leave(self, slot_id: str, *, flap: bool | None = None, persist: bool = False) -> None:
        await self._sensors[slot_id].leave(flap=flap, persist=persist)

    async def go_offline(self, slot_id: str) -> None:
        await self._sensors[slot_id].go_offline()

    async def come_online(self, slot_id: str) -> None:
        await self._sensors[slot_id].come_online()

    async def run(self, duration: float | None = None) -> None:
        """Random traffic on every sensor for ``duration`` real seconds (None: forever)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration), asyncio.TaskGroup() as task_group:
                for sensor in self._sensors.values():
                    task_group.create_task(sensor.live(), name=f"sensor-{sensor.sensor_id}")


async def run_sensors(
    config: SiteConfigLike,
    *,
    url: str | None = None,
    speed: float = 1.0,
    seed: int | None = None,
    duration: float | None = None,
) -> None:
    """`evpark sim sensors`: random traffic until ``duration``, SIGTERM or Ctrl-C."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    field = SensorField.from_config(config, url, seed=seed, speed=speed)
    if not len(field):
        log.warning("sim.sensors.none", site=config.site.id, hint="no slot has a `sensor`")
        return
    async with field, asyncio.TaskGroup() as task_group:
        traffic = task_group.create_task(field.run(duration))
        stopping = task_group.create_task(stop.wait())
        await asyncio.wait({traffic, stopping}, return_when=asyncio.FIRST_COMPLETED)
        traffic.cancel()
        stopping.cancel()
    log.info("sim.sensors.stopped", site=config.site.id)
