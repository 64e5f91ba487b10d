"""One simulated occupancy sensor, talking MQTT like a real one.

Each :class:`SimSensor` has its own MQTT connection with a last will (``offline``,
retained, on ``.../status``), says ``online`` when it connects and publishes its state
retained on ``evpark/<site>/sensors/<sensor>/state``: JSON with ``ts``, ``battery`` and
``rssi``, or for some sensors the plain ``1``/``0`` the contract allows.

Realistic noise (:class:`Noise`): a car arriving or leaving makes the reading flap a few
times within a second or two before it settles; sensors drop offline for a while and come
back; batteries drain and some start low; sensors send a heartbeat with their current
state. Time: ``speed`` divides the traffic's times (stays, gaps, outages); the flapping
and the heartbeat stay in real seconds, since the edge's debounce and stale times are
real too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

import aiomqtt
import structlog

from common.backoff import Backoff
from common.mqtt_url import BrokerAddress

log = structlog.get_logger("sim.sensors")


@dataclass(frozen=True)
class Noise:
    """How imperfect the simulated sensors are (times in seconds)."""

    flap_probability: float = 0.5  # an arrival or departure flaps
    max_flaps: int = 3  # extra flips before the reading settles
    flap_gap: tuple[float, float] = (0.2, 1.2)  # real seconds between flips
    heartbeat: float = 60.0  # real seconds between republished states
    mean_free: float = 900.0  # traffic: mean time a slot stays free
    mean_stay: float = 2700.0  # traffic: mean time a car stays
    mean_between_outages: float = 4 * 3600.0  # per sensor
    outage: tuple[float, float] = (120.0, 1200.0)
    low_battery_share: float = 0.1  # sensors that start with a low battery
    battery_drain_per_hour: float = 0.05  # percent per simulated hour
    plain_share: float = 0.2  # sensors that publish "1"/"0" instead of JSON
    rssi: tuple[float, float] = (-75.0, 6.0)  # mean and spread, dBm
    random_start: bool = True  # start occupied with the traffic's odds (else free)


# no flapping, no outages, full batteries, JSON, every slot free at start: for scenarios
QUIET = Noise(
    flap_probability=0.0,
    mean_between_outages=float("inf"),
    low_battery_share=0.0,
    plain_share=0.0,
    random_start=False,
)


def utc_now() -> datetime:
    return datetime.now(UTC)


class SimSensor:
    """One sensor with its own connection; ``async with`` connects it."""

    def __init__(
        self,
        *,
        site_id: str,
        slot_id: str,
        sensor_id: str,
        address: BrokerAddress,
        rng: random.Random,
        noise: Noise = Noise(),
        speed: float = 1.0,
        clock: Callable[[], datetime] = utc_now,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.site_id = site_id
        self.slot_id = slot_id
        self.sensor_id = sensor_id
        self._address = address
        self._rng = rng
        self._noise = noise
        self._speed = speed
        self._clock = clock
        self._username = username
        self._password = password
        odds = noise.mean_stay / (noise.mean_stay + noise.mean_free)
        self.occupied = noise.random_start and rng.random() < odds
        low = rng.random() < noise.low_battery_share
        self.battery = rng.uniform(3, 19) if low else rng.uniform(30, 100)
        self.plain = rng.random() < noise.plain_share
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()
        self._log = log.bind(site=site_id, sensor=sensor_id, slot=slot_id)

    @property
    def state_topic(self) -> str:
        return f"evpark/{self.site_id}/sensors/{self.sensor_id}/state"

    @property
    def status_topic(self) -> str:
        return f"evpark/{self.site_id}/sensors/{self.sensor_id}/status"

    @property
    def online(self) -> bool:
        return self._client is not None

    async def __aenter__(self) -> Self:
        await self.come_online()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # a simulator that stops says so; a crashed one leaves it to the last will
        with contextlib.suppress(aiomqtt.MqttError):
            await self.go_offline()

    # ------------------------------------------------------------ the scenario API

    async def arrive(self, *, flap: bool | None = None, persist: bool = False) -> None:
        """A car arrives. ``persist``: if the broker drops the connection meanwhile,
        reconnect (with back-off) until the new state is out, rather than raise (a scenario
        driving a bay; random traffic reconnects in :meth:`live`)."""
        await self._change(True, flap, persist)

    async def leave(self, *, flap: bool | None = None, persist: bool = False) -> None:
        """The car leaves; ``persist`` as for :meth:`arrive`."""
        await self._change(False, flap, persist)

    async def go_offline(self) -> None:
        """Say ``offline`` (retained) and disconnect; silent until :meth:`come_online`."""
        async with self._lock:
            client, self._client = self._client, None
            if client is None:
                return
            try:
                await client.publish(self.status_topic, b"offline", qos=1, retain=True)
            finally:
                await client.__aexit__(None, None, None)
            self._log.info("sim.sensor.offline")

    async def come_online(self) -> None:
        """Connect (with the last will), say ``online`` and publish the current state."""
        async with self._lock:
            if self._client is not None:
                return
            client = aiomqtt.Client(
                self._address.host,
                self._address.port,
                identifier=f"sim-{self.site_id}-{self.sensor_id}",
                username=self._username,
                password=self._password,
                tls_context=ssl.create_default_context() if self._address.tls else None,
                will=aiomqtt.Will(self.status_topic, b"offline", qos=1, retain=True),
                keepalive=30,
            )
            await client.__aenter__()
            self._client = client
            try:
                await client.publish(self.status_topic, b"online", qos=1, retain=True)
                await self._publish_state(client)
            except aiomqtt.MqttError:
                self._client = None
                await client.__aexit__(None, None, None)
                raise
            self._log.info("sim.sensor.online", battery=round(self.battery))

    def set_battery(self, percent: float) -> None:
        self.battery = max(0.0, min(100.0, percent))

    async def heartbeat(self) -> None:
        """Republish the current state (what sensors do every few minutes)."""
        async with self._lock:
            if self._client is not None:
                await self._publish_state(self._client)

    # ------------------------------------------------------------ internals

    async def _change(self, occupied: bool, flap: bool | None, persist: bool = False) -> None:
        noise = self._noise
        if flap is None:
            flap = self._rng.random() < noise.flap_probability
        flips = self._rng.randint(1, max(1, noise.max_flaps)) if flap else 0
        # a flapping sensor sees the new value, loses it, sees it again...
        for index in range(flips * 2):
            await self._set(occupied if index % 2 == 0 else not occupied, persist)
            await asyncio.sleep(self._rng.uniform(*noise.flap_gap))
        await self._set(occupied, persist)
        self._log.info("sim.sensor.arrived" if occupied else "sim.sensor.left", flaps=flips)

    async def _set(self, occupied: bool, persist: bool = False) -> None:
        async with self._lock:
            self.occupied = occupied
            client = self._client
            if client is None:  # offline (an outage): the state goes out when it is back
                return
            try:
                await self._publish_state(client)
                return
            except aiomqtt.MqttError as err:
                if not persist:
                    raise
                self._log.warning("sim.sensor.connection_lost", error=str(err))
        await self._drop()
        await self._reconnect()

    async def _reconnect(self) -> None:
        """Until connected again (coming online publishes the current state)."""
        backoff = Backoff(base=1.0, cap=30.0, rng=self._rng)
        while True:
            await asyncio.sleep(backoff.next_delay())
            try:
                await self.come_online()
                return
            except aiomqtt.MqttError as err:
                self._log.warning("sim.sensor.reconnect_failed", error=str(err))

    async def _publish_state(self, client: aiomqtt.Client) -> None:
        await client.publish(self.state_topic, self.payload(), qos=1, retain=True)

    def payload(self) -> bytes:
        if self.plain:
            return b"1" if self.occupied else b"0"
        mean, spread = self._noise.rssi
        document = {
            "occupied": self.occupied,
            "ts": self._clock()
            .astimezone(UTC)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
            "battery": round(self.battery),
            "rssi": max(-140, min(-20, round(self._rng.gauss(mean, spread)))),
        }
        return json.dumps(document).encode()

    def _drain(self, simulated_seconds: float) -> None:
        self.battery = max(
            0.0, self.battery - self._noise.battery_drain_per_hour * simulated_seconds / 3600
        )

    # ------------------------------------------------------------ random traffic

    async def live(self) -> None:
        """Random traffic for this slot until cancelled; reconnects when the broker goes."""
        backoff = Backoff(base=1.0, cap=30.0, rng=self._rng)
        while True:
            try:
                await self.come_online()
                backoff.reset()
                async with asyncio.TaskGroup() as task_group:
                    task_group.create_task(self._traffic())
                    task_group.create_task(self._heartbeats())
                    task_group.create_task(self._outages())
            except* aiomqtt.MqttError as group:
                self._log.warning("sim.sensor.connection_lost", error=str(group.exceptions[0]))
                await self._drop()
            await asyncio.sleep(backoff.next_delay())

    async def _drop(self) -> None:
        async with self._lock:
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)

    async def _sleep_simulated(self, mean: float) -> None:
        seconds = self._rng.expovariate(1.0 / mean) if mean > 0 else 0.0
        self._drain(seconds)
        await asyncio.sleep(seconds / self._speed)

    async def _traffic(self) -> None:
        noise = self._noise
        while True:
            await self._sleep_simulated(noise.mean_stay if self.occupied else noise.mean_free)
            await self._change(not self.occupied, None)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self._noise.heartbeat * self._rng.uniform(0.9, 1.1))
            await self.heartbeat()

    async def _outages(self) -> None:
        noise = self._noise
        if noise.mean_between_outages == float("inf"):
            return
        while True:
            await self._sleep_simulated(noise.mean_between_outages)
            await self.go_offline()
            await asyncio.sleep(self._rng.uniform(*noise.outage) / self._speed)
            await self.come_online()
