"""Vehicles coming and going: one scenario that drives sensors and chargers together.

On an EV slot a car arrives (its sensor sees it), plugs in, authorizes, charges, stops,
sometimes lingers with the cable in (a charged-idle car), unplugs and leaves; now and
then a car that does not charge parks there (a blocked EV slot). Other slots see random
traffic from their sensors. Times are simulated: ``speed`` simulated seconds pass per
wall second, like the chargers' own ``speed``.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Final

import structlog

from sim.charger import SimCharger
from sim.sensors import SensorField

log = structlog.get_logger("sim.vehicles")


@dataclass(frozen=True)
class Habits:
    """How drivers behave, in simulated seconds."""

    gap: tuple[float, float] = (300.0, 1800.0)  # the slot stays free
    settle: tuple[float, float] = (20.0, 90.0)  # parked -> cable in
    charge: tuple[float, float] = (1200.0, 5400.0)
    linger: tuple[float, float] = (0.0, 1200.0)  # charged, cable still in
    leave: tuple[float, float] = (30.0, 120.0)  # unplugged -> gone
    blocked_share: float = 0.15  # cars that park on an EV slot without charging
    blocked_stay: tuple[float, float] = (600.0, 2400.0)


DEMO_HABITS: Final = Habits()


@dataclass(frozen=True)
class EvBay:
    slot_id: str
    charger: SimCharger
    evse: int


class VehicleScenario:
    def __init__(
        self,
        sensors: SensorField,
        bays: list[EvBay],
        *,
        speed: float = 60.0,
        seed: int | None = None,
        habits: Habits = DEMO_HABITS,
    ) -> None:
        self.sensors = sensors
        self.bays = bays
        self.speed = speed
        self.habits = habits
        self.seed = seed
        self.visits = 0

    async def run(self) -> None:
        """Until cancelled: EV bays driven here, the other sensors on random traffic."""
        ev_slots = {bay.slot_id for bay in self.bays}
        async with asyncio.TaskGroup() as group:
            for index, bay in enumerate(self.bays):
                rng = random.Random(None if self.seed is None else self.seed + index)
                group.create_task(self._bay(bay, rng), name=f"bay-{bay.slot_id}")
            for sensor in self.sensors:
                if sensor.slot_id not in ev_slots:
                    group.create_task(sensor.live(), name=f"sensor-{sensor.sensor_id}")

    async def _wait(self, rng: random.Random, span: tuple[float, float]) -> None:
        await asyncio.sleep(rng.uniform(*span) / self.speed)

    async def _bay(self, bay: EvBay, rng: random.Random) -> None:
        habits = self.habits
        if self.sensors[bay.slot_id].occupied:  # an EV bay starts empty in this story
            await self.sensors.leave(bay.slot_id, flap=False, persist=True)
        await bay.charger.wait_online()
        first = True
        while True:
            await self._wait(rng, (habits.gap[0] / 10, habits.gap[0]) if first else habits.gap)
            self.visits += 1
            await self.sensors.arrive(bay.slot_id, persist=True)  # a broker outage waits
            if not first and rng.random() < habits.blocked_share:
                log.info("sim.vehicle.parked_without_charging", slot=bay.slot_id)
                await self._wait(rng, habits.blocked_stay)
            else:
                await self._charge(bay, rng)
            await self.sensors.leave(bay.slot_id, persist=True)
            first = False

    async def _charge(self, bay: EvBay, rng: random.Random) -> None:
        habits, charger = self.habits, bay.charger
        await self._wait(rng, habits.settle)
        await charger.plug_in(bay.evse)
        id_tag = rng.choice(charger.config.id_tags)
        if await charger.authorize(id_tag) == "Accepted":
            await charger.start(bay.evse, id_tag)
            log.info("sim.vehicle.charging", slot=bay.slot_id, charger=charger.id, id_tag=id_tag)
            await self._wait(rng, habits.charge)
            if charger.transaction(bay.evse) is not None:
                await charger.stop(bay.evse, "Local")
            await self._wait(rng, habits.linger)
        await charger.unplug(bay.evse)
        await self._wait(rng, habits.leave)
