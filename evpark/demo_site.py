"""The demo's site: its ports, its site file and its simulated chargers.

What the edge is told (``site_config``) and what talks to it (``demo_chargers``) are kept
together, apart from the processes that run them (:mod:`evpark.demo`), so the two cannot
drift: a charger the site file names with a password is a charger simulated with it.

Slots A1 and A2 belong to the vehicle scenario (random cars on CP-1 and CP-2); slot A3 and
its charger CP-3 belong to the demo driver alone (:mod:`evpark.demo_driver`), so its visits
never meet a random car.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from sim.charger import SimChargerConfig
from sim.charger.fleet import FleetOptions, VersionChoice, fleet_configs

SITE_ID: Final = "demo-site"
SPEED: Final = 60.0  # simulated seconds per wall second
# The site's broker: one already running there is used, else the edge embeds one.
MQTT_PORT: Final = 1883
ID_TAGS: Final = ("DEMO-TAG-1", "DEMO-TAG-2", "DEMO-TAG-3", "FLEET-0001")
# Chargers the site knows with passwords (security profile 1): (id, OCPP version, password)
NAMED_CHARGERS: Final[tuple[tuple[str, VersionChoice, str], ...]] = (
    ("CP-1", "1.6", "demo-password-1"),
    ("CP-2", "2.0.1", "demo-password-2"),
    ("CP-3", "1.6", "demo-password-3"),
)
# the demo driver's own bay: its slot, sensor and charger
DRIVER_SLOT: Final = "A3"
DRIVER_SENSOR: Final = "S-A3"
DRIVER_CHARGER: Final = "CP-3"


@dataclass(frozen=True)
class DemoSlot:
    id: str
    type: str
    sensor: str
    charger: str | None = None


# the site's slots, as its site file and central's lot configuration both name them
SLOTS: Final = (
    DemoSlot("A1", "ev", "S-A1", "CP-1"),
    DemoSlot("A2", "ev", "S-A2", "CP-2"),
    DemoSlot(DRIVER_SLOT, "ev", DRIVER_SENSOR, DRIVER_CHARGER),
    DemoSlot("B1", "standard", "S-B1"),
    DemoSlot("B2", "standard", "S-B2"),
    DemoSlot("B3", "accessible", "S-B3"),
)


def lot_config() -> dict[str, object]:
    """The site's lot for central (``PUT /parking/lots/{site}``): what may be reserved."""
    return {
        "name": "evpark demo car park",
        "slots": [
            {"slot_id": slot.id, "slot_type": slot.type, "charger_id": slot.charger}
            for slot in SLOTS
        ],
    }


@dataclass(frozen=True)
class DemoPorts:
    ocpp: int
    http: int
    mqtt: int
    central: int
    smtp: int


def free_or_any_port(preferred: int) -> int:
    """``preferred`` if it is free on 127.0.0.1, else any free port."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_ports() -> DemoPorts:
    return DemoPorts(
        ocpp=free_or_any_port(9000),
        http=free_or_any_port(8080),
        mqtt=MQTT_PORT,
        central=free_or_any_port(8000),
        smtp=free_or_any_port(8025),
    )


def site_config(ports: DemoPorts, data_dir: Path) -> str:
    chargers = "\n".join(
        f'[[chargers]]\nid = "{cid}"\npassword = "{password}"\ndescription = "OCPP {version}"\n'
        for cid, version, password in NAMED_CHARGERS
    )
    tags = ", ".join(f'"{tag}"' for tag in ID_TAGS)
    slots = "\n".join(
        f'[[slots]]\nid = "{slot.id}"\ntype = "{slot.type}"\nsensor = "{slot.sensor}"\n'
        + (f'charger = "{slot.charger}"\nevse = 1\n' if slot.charger else "")
        for slot in SLOTS
    )
    return f"""# written by `evpark demo`
[site]
id = "{SITE_ID}"
name = "evpark demo car park"
environment = "development"

[ocpp]
host = "127.0.0.1"
port = {ports.ocpp}
auto_register = true
heartbeat_interval = 60
ping_interval = 20

[http]
host = "127.0.0.1"
port = {ports.http}

[central]
url = "http://127.0.0.1:{ports.central}"
batch_interval = 0.5
# the site key comes from EVPARK_CENTRAL__SITE_KEY

[mqtt]
url = "mqtt://127.0.0.1:{ports.mqtt}"
embedded = true      # the edge runs a broker when none listens there

[slot_timing]
debounce = 2
ev_slot_blocked_after = 30
charged_idle_after = 30
sensor_suspect_after = 30

[storage]
data_dir = "{data_dir.as_posix()}"

[authorization]
id_tags = [{tags}]

{chargers}
{slots}"""


def demo_chargers(url: str, extra_per_version: int) -> list[SimChargerConfig]:
    """The named chargers (cars of the scenario or the demo driver plug in there) and
    ``extra_per_version`` more of each OCPP version running their own driver loop."""
    named = [
        config
        for seed, (cid, version, password) in enumerate(NAMED_CHARGERS, start=11)
        for config in fleet_configs(
            FleetOptions(url=url, ids=(cid,), version=version, password=password, seed=seed)
        )
    ]
    extra = (
        fleet_configs(
            FleetOptions(
                url=url, count=2 * extra_per_version, version="mixed", prefix="SIM", seed=20
            )
        )
        if extra_per_version
        else []
    )
    common = {"speed": SPEED, "meter_interval": 5.0, "id_tags": ID_TAGS}
    return [_with(c, drive=False, **common) for c in named] + [
        _with(c, drive=True, **common) for c in extra
    ]


def _with(config: SimChargerConfig, **changes: object) -> SimChargerConfig:
    return replace(config, **changes)  # type: ignore[arg-type]
