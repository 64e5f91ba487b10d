"""What the sensor simulator reads of a site: its id, the slots that have a sensor, and
the MQTT broker.

The simulator reads the edge's site file itself (the TOML of docs/configuration.md,
``[site]``, ``[[slots]]`` and ``[mqtt]`` only) rather than importing the edge: it talks
to the edge over MQTT alone, like real sensors. The edge's own ``SiteConfig`` has the
same shape (:class:`SiteConfigLike`), so tests and the demo pass theirs.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"


class SiteLike(Protocol):
    @property
    def id(self) -> str: ...


class SlotLike(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def sensor(self) -> str | None: ...


class MqttLike(Protocol):
    @property
    def url(self) -> str: ...

    @property
    def username(self) -> str | None: ...

    @property
    def password(self) -> str | None: ...


class SiteConfigLike(Protocol):
    """The part of a site configuration the sensor simulator uses."""

    @property
    def site(self) -> SiteLike: ...

    @property
    def slots(self) -> Sequence[SlotLike]: ...

    @property
    def mqtt(self) -> MqttLike: ...


@dataclass(frozen=True)
class Site:
    id: str


@dataclass(frozen=True)
class Slot:
    id: str
    sensor: str | None = None


@dataclass(frozen=True)
class Mqtt:
    url: str = DEFAULT_MQTT_URL
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class SiteFile:
    """A site file as the sensor simulator reads it."""

    site: Site
    slots: tuple[Slot, ...]
    mqtt: Mqtt


class SiteFileError(ValueError):
    """The site file cannot be read, or lacks what the simulator needs."""


def read_site_file(path: Path, environ: Mapping[str, str] = os.environ) -> SiteFile:
    """The site, slots and broker of a site TOML file. ``EVPARK_MQTT__URL``,
    ``EVPARK_MQTT__USERNAME`` and ``EVPARK_MQTT__PASSWORD`` override ``[mqtt]``, as they
    do for the edge."""
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except OSError as err:
        raise SiteFileError(f"{path}: {err.strerror or err}") from err
    except tomllib.TOMLDecodeError as err:
        raise SiteFileError(f"{path}: {err}") from err
    site = _table(document, "site", path)
    mqtt = _table(document, "mqtt", path, required=False)
    slots = document.get("slots", [])
    if not isinstance(slots, list) or not all(isinstance(slot, dict) for slot in slots):
        raise SiteFileError(f"{path}: slots must be an array of tables ([[slots]])")

    def mqtt_setting(key: str) -> str | None:
        return environ.get(f"EVPARK_MQTT__{key.upper()}") or _string(mqtt, "mqtt", key, path)

    return SiteFile(
        site=Site(_required(site, "site", "id", path)),
        slots=tuple(
            Slot(_required(slot, "slots", "id", path), _string(slot, "slots", "sensor", path))
            for slot in slots
        ),
        mqtt=Mqtt(
            url=mqtt_setting("url") or DEFAULT_MQTT_URL,
            username=mqtt_setting("username"),
            password=mqtt_setting("password"),
        ),
    )


def _table(
    document: dict[str, Any], name: str, path: Path, *, required: bool = True
) -> dict[str, Any]:
    table = document.get(name, None if required else {})
    if not isinstance(table, dict):
        raise SiteFileError(f"{path}: no [{name}] table")
    return table


def _string(table: dict[str, Any], section: str, key: str, path: Path) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise SiteFileError(f"{path}: {section}.{key} must be a string")
    return value


def _required(table: dict[str, Any], section: str, key: str, path: Path) -> str:
    value = _string(table, section, key, path)
    if not value:
        raise SiteFileError(f"{path}: {section}.{key} is missing")
    return value
