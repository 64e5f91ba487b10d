"""The slot model's configuration: the site's slots and the times its rules wait for.

Built once from the site config (:meth:`Layout.from_config`); the model only reads it.
Visit ids come from here too, so that a test or a replay can choose how they are made.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from edge.core.ids import ChargerId, SlotId
from edge.core.slots.values import Condition, EvseId, SensorId, VisitId

if TYPE_CHECKING:
    from edge.config import SlotConfig, SlotTimingSection


@dataclass(frozen=True)
class SlotSpec:
    slot_id: SlotId
    slot_type: str = "standard"
    sensor_id: SensorId | None = None
    charger_id: ChargerId | None = None
    evse_id: EvseId | None = None
    connector_id: int = 1
    label: str = ""
    # this sensor's own silence limit (sensors with a slow heartbeat); None: the site's
    sensor_stale_after: timedelta | None = None


@dataclass(frozen=True)
class Timing:
    debounce: timedelta = timedelta(seconds=5)
    sensor_stale_after: timedelta = timedelta(seconds=900)
    low_battery: int = 20  # percent; at or below is low
    ev_slot_blocked_after: timedelta = timedelta(seconds=600)
    charged_idle_after: timedelta = timedelta(seconds=900)
    sensor_suspect_after: timedelta = timedelta(seconds=300)

    @classmethod
    def from_config(cls, section: SlotTimingSection) -> Timing:
        return cls(
            debounce=timedelta(seconds=section.debounce),
            sensor_stale_after=timedelta(seconds=section.sensor_stale_after),
            low_battery=section.low_battery,
            ev_slot_blocked_after=timedelta(seconds=section.ev_slot_blocked_after),
            charged_idle_after=timedelta(seconds=section.charged_idle_after),
            sensor_suspect_after=timedelta(seconds=section.sensor_suspect_after),
        )

    def hold_for(self, condition: Condition) -> timedelta:
        return {
            Condition.EV_SLOT_BLOCKED: self.ev_slot_blocked_after,
            Condition.CHARGED_IDLE: self.charged_idle_after,
            Condition.SENSOR_SUSPECT: self.sensor_suspect_after,
        }[condition]


_VISIT_NAMESPACE = uuid.UUID("7d7f4b5e-8a59-4c4e-9d3f-2f3b0c1a9e61")


def deterministic_visit_id(slot_id: SlotId, arrived_at: datetime) -> VisitId:
    """A UUIDv5 of (slot, arrival): the same arrival always gets the same id."""
    return VisitId(str(uuid.uuid5(_VISIT_NAMESPACE, f"{slot_id}|{arrived_at.isoformat()}")))


@dataclass(frozen=True)
class Layout:
    """The site's slots and the model's times; built once from the site config."""

    slots: tuple[SlotSpec, ...]
    timing: Timing = field(default_factory=Timing)
    visit_ids: Callable[[SlotId, datetime], VisitId] = deterministic_visit_id
    by_sensor: Mapping[SensorId, SlotId] = field(init=False, repr=False, compare=False)
    by_connector: Mapping[tuple[ChargerId, EvseId], SlotId] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        by_sensor = {s.sensor_id: s.slot_id for s in self.slots if s.sensor_id is not None}
        by_connector = {
            (s.charger_id, s.evse_id): s.slot_id
            for s in self.slots
            if s.charger_id is not None and s.evse_id is not None
        }
        object.__setattr__(self, "by_sensor", by_sensor)
        object.__setattr__(self, "by_connector", by_connector)

    @classmethod
    def from_config(
        cls,
        slots: Sequence[SlotConfig],
        timing: SlotTimingSection,
        visit_ids: Callable[[SlotId, datetime], VisitId] = deterministic_visit_id,
    ) -> Layout:
        return cls(
            slots=tuple(
                SlotSpec(
                    slot_id=SlotId(s.id),
                    slot_type=s.type,
                    sensor_id=SensorId(s.sensor) if s.sensor else None,
                    charger_id=ChargerId(s.charger) if s.charger else None,
                    evse_id=EvseId(s.evse) if s.evse is not None else None,
                    connector_id=s.connector,
                    label=s.label,
                    sensor_stale_after=_seconds(getattr(s, "sensor_stale_after", None)),
                )
                for s in slots
            ),
            timing=Timing.from_config(timing),
            visit_ids=visit_ids,
        )


def _seconds(value: float | None) -> timedelta | None:
    return timedelta(seconds=value) if value is not None else None
