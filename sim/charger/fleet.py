"""A fleet of simulated chargers (what `evpark sim chargers` runs): ids, versions,
seeds and starting registers derived from a few options, all run in one TaskGroup."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Literal

import structlog

from sim.charger.core import SimCharger
from sim.charger.curve import CurveKind
from sim.charger.model import DEFAULT_ID_TAGS, SimChargerConfig
from sim.charger.schemas import OcppVersion

VersionChoice = Literal["1.6", "2.0.1", "mixed"]


@dataclass(frozen=True)
class FleetOptions:
    url: str = "ws://127.0.0.1:9000/ocpp"
    count: int = 1
    version: VersionChoice = "1.6"
    prefix: str = "SIM"
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    ids: tuple[str, ...] = ()
    id_tags: tuple[str, ...] = DEFAULT_ID_TAGS
    speed: float = 60.0
    meter_interval: float = 10.0
    seed: int = 1
    connectors: int = 1
    curve: CurveKind = "ac"
    max_power_w: float = 11_000.0
    drive: bool = True
    # 2.0.1 chargers start transactions at plug-in, the token following (EVConnected)
    tx_start_at_plug_in: bool = False


def fleet_configs(options: FleetOptions) -> list[SimChargerConfig]:
    """One config per charger: explicit ``ids`` first, else ``count`` generated ids
    like ``SIM-16-001``/``SIM-201-001``; ``mixed`` alternates versions."""
    rng = random.Random(options.seed)
    versions: list[OcppVersion]
    count = len(options.ids) or options.count
    if options.version == "mixed":
        versions = [("1.6", "2.0.1")[i % 2] for i in range(count)]  # type: ignore[misc]
    else:
        versions = [options.version] * count
    numbers: dict[str, int] = {}
    configs = []
    for index, version in enumerate(versions):
        if options.ids:
            charger_id = options.ids[index]
        else:
            tag = "16" if version == "1.6" else "201"
            numbers[tag] = numbers.get(tag, 0) + 1
            charger_id = f"{options.prefix}-{tag}-{numbers[tag]:03d}"
        configs.append(
            SimChargerConfig(
                charge_point_id=charger_id,
                url=options.url,
                version=version,
                password=options.password,
                ca_file=options.ca_file,
                cert_file=options.cert_file,
                key_file=options.key_file,
                connectors=options.connectors,
                curve=options.curve,
                max_power_w=options.max_power_w,
                start_register_wh=float(rng.randrange(0, 5_000_000)),
                meter_interval=options.meter_interval,
                speed=options.speed,
                drive=options.drive,
                tx_start_at_plug_in=options.tx_start_at_plug_in,
                id_tags=options.id_tags,
                seed=rng.randrange(2**32),
            )
        )
    return configs


async def run_fleet(
    configs: list[SimChargerConfig], stop: asyncio.Event, *, stop_timeout: float = 10.0
) -> list[SimCharger]:
    """Run every charger until ``stop`` is set, then stop them gracefully (sessions end,
    queues flush within ``stop_timeout``)."""
    log = structlog.get_logger("sim.fleet")
    chargers = [SimCharger(config) for config in configs]
    log.info("sim.fleet.starting", chargers=len(chargers))
    async with asyncio.TaskGroup() as group:
        for charger in chargers:
            group.create_task(charger.run(stop_timeout=stop_timeout))
        await stop.wait()
        log.info("sim.fleet.stopping")
        for charger in chargers:
            charger.request_stop()
    log.info("sim.fleet.stopped")
    return chargers
