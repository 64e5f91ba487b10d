"""The slot model's shell: feeds it sensors, chargers, sessions, reservations and time;
stores what it decides (visits, events for central) and publishes slot states.

Everything goes through one queue and one loop, so the pure model sees events in order
and each decision is stored (visits and outbox in one transaction) before it is
published on MQTT or shown by the API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from contract.events import (
    Data,
    ParkingCondition,
    ParkingOccupied,
    ParkingSlotState,
    ParkingVacated,
    SensorStatus,
)
from edge.config import SiteConfig
from edge.core.ids import SlotId
from edge.core.model import ConnectorStatus, Subject
from edge.core.slots.events import (
    ConditionCleared,
    ConditionRaised,
    ConnectorReported,
    OutOfServiceSet,
    ReservationCleared,
    ReservationSet,
    SensorAvailability,
    SensorLowBattery,
    SensorReading,
    SensorReported,
    SensorWentStale,
    SessionEnded,
    SessionLinked,
    SlotEvent,
    SlotOutput,
    SlotStateChanged,
    Tick,
    VisitEnded,
    VisitSessionLinked,
    VisitStarted,
)
from edge.core.slots.layout import Layout
from edge.core.slots.model import SiteSummary, SlotModel, SlotView, touched_slots
from edge.core.slots.values import EvseId, ReservationId, SensorId
from edge.services.changes import SiteChange
from edge.services.site import Site
from edge.storage import site_sql as repo
from edge.storage.slots_sql import (
    load_slot_state,
    record_outputs,
    save_out_of_service,
    save_reservation,
)
from edge.storage.sqlite import SqliteStore, Unit

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]
MAX_TICK = timedelta(seconds=1)


class SlotPublisher(Protocol):
    """Where slot states go besides the API (the MQTT adapter)."""

    def publish_slot(self, view: SlotView) -> None: ...
    def publish_summary(self, summary: SiteSummary, at: datetime) -> None: ...


@dataclass(frozen=True)
class _Request:
    """An event from the API, answered once it is stored."""

    event: SlotEvent
    done: asyncio.Future[list[SlotOutput]]


class SlotService:
    def __init__(self, config: SiteConfig, site: Site, store: SqliteStore, clock: Clock) -> None:
        self.config = config
        self.site = site
        self.store = store
        self.clock = clock
        self.layout = Layout.from_config(config.slots, config.slot_timing)
        self.model: SlotModel | None = None
        self.publishers: list[SlotPublisher] = []
        self._queue: asyncio.Queue[SlotEvent | _Request] = asyncio.Queue()
        self._slot_types = {s.id: s.type for s in config.slots}
        # who each reservation is for, until the visit that used it ends
        self._subjects: dict[ReservationId, Subject] = {}

    # --- start-up ----------------------------------------------------------------------

    async def load(self) -> None:
        """Rebuild the model: open visits, out-of-service flags, reservations, and what
        the chargers last said; sensors report again when the MQTT session starts."""
        now = self.clock()
        saved = await self.store.read(load_slot_state)
        self._subjects = saved.subjects
        model = SlotModel(self.layout, now, open_visits=saved.open_visits)
        for slot_id, reason in saved.out_of_service.items():
            model.handle(OutOfServiceSet(slot_id, True, reason), now)
        for slot_id, (reservation_id, until) in saved.reservations.items():
            model.handle(ReservationSet(slot_id, reservation_id, until), now)
        for (charger_id, evse_id), slot_id in self.layout.by_connector.items():
            evse = self.site.evse_of(charger_id, evse_id)
            if evse is not None and evse.status is not ConnectorStatus.UNKNOWN:
                model.handle(ConnectorReported(charger_id, evse_id, evse.status), now)
            session = self.site.active_session_on(charger_id, evse_id)
            if session is not None:
                model.handle(SessionLinked(slot_id, session.id), now)
        self.model = model
        self.site.observe(self._on_site_change)
        log.info("slots.loaded", slots=len(self.layout.slots), open_visits=len(saved.open_visits))

    # --- inputs ------------------------------------------------------------------------

    def _on_site_change(self, change: SiteChange) -> None:
        if change.evse_id is None:
            return
        slot_id = self.layout.by_connector.get((change.charger_id, EvseId(change.evse_id)))
        if slot_id is None:
            return
        if change.kind == "evse":
            evse = self.site.evse_of(change.charger_id, change.evse_id)
            if evse is not None and evse.status is not ConnectorStatus.UNKNOWN:
                self._queue.put_nowait(
                    ConnectorReported(change.charger_id, EvseId(change.evse_id), evse.status)
                )
        elif change.kind == "session" and change.session_id is not None:
            active = self.site.active_session(change.session_id) is not None
            event = SessionLinked if active else SessionEnded
            self._queue.put_nowait(event(slot_id, change.session_id))

    async def sensor_reported(
        self, sensor_id: SensorId, reading: SensorReading, received_at: datetime
    ) -> None:
        self._queue.put_nowait(
            SensorReported(
                sensor_id, reading.occupied, reading.battery, reading.rssi, reading.measured_at
            )
        )

    async def sensor_availability(
        self, sensor_id: SensorId, online: bool, received_at: datetime
    ) -> None:
        self._queue.put_nowait(SensorAvailability(sensor_id, online))

    async def request(self, event: SlotEvent) -> list[SlotOutput]:
        """Apply a technician's or central's change and return once it is stored."""
        done: asyncio.Future[list[SlotOutput]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Request(event, done))
        return await done

    # --- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        assert self.model is not None, "load() first"
        self._publish_all()
        while True:
            deadline = self.model.next_deadline()
            now = self.clock()
            wait = (
                MAX_TICK if deadline is None else min(MAX_TICK, max(deadline - now, MAX_TICK / 50))
            )
            try:
                async with asyncio.timeout(wait.total_seconds()):
                    item = await self._queue.get()
            except TimeoutError:
                item = Tick(self.clock())
            await self._handle(item)

    async def _handle(self, item: SlotEvent | _Request) -> None:
        assert self.model is not None
        event = item.event if isinstance(item, _Request) else item
        now = self.clock()
        try:
            outputs = self.model.handle(event, now)
            await self._store(outputs, now)
        except Exception as err:
            if isinstance(item, _Request):
                item.done.set_exception(err)
                return
            raise
        if isinstance(item, _Request):
            item.done.set_result(outputs)
        self._publish(outputs, now)

    async def _store(self, outputs: list[SlotOutput], now: datetime) -> None:
        unit = Unit()
        record_outputs(unit, outputs)
        for output in outputs:
            event = self._event_for_central(output)
            if event is not None:
                data, subject = event
                repo.add_outbox_event(unit, data, subject, now)
            if isinstance(output, VisitStarted | VisitEnded | ConditionRaised | ConditionCleared):
                log.info(f"slots.{type(output).__name__}", slot=output.slot_id)
        if unit.ops:
            await self.store.write(unit)

    def _event_for_central(self, output: SlotOutput) -> tuple[Data, str] | None:
        """The event central hears of a slot output, and its subject (None: site only)."""
        slot_type = self._slot_types.get(getattr(output, "slot_id", ""), "standard")
        match output:
            case VisitStarted():
                return ParkingOccupied(
                    slot_id=output.slot_id, slot_type=slot_type, visit_id=output.visit_id,
                    arrived_at=output.arrived_at, reservation_id=output.reservation_id,
                    **self.reservation_subject(output.reservation_id).fields(),
                ), output.slot_id  # fmt: skip
            case VisitEnded():
                subject = self.reservation_subject(output.reservation_id)
                if output.reservation_id is not None:  # the reservation is spent
                    self._subjects.pop(output.reservation_id, None)
                return ParkingVacated(
                    slot_id=output.slot_id, slot_type=slot_type, visit_id=output.visit_id,
                    arrived_at=output.arrived_at, departed_at=output.departed_at,
                    duration_s=output.duration.total_seconds(),
                    session_id=output.session_id, reservation_id=output.reservation_id,
                    **subject.fields(),
                ), output.slot_id  # fmt: skip
            case ConditionRaised() | ConditionCleared():
                return ParkingCondition(
                    slot_id=output.slot_id, condition=output.condition.value,
                    active=isinstance(output, ConditionRaised), since=output.since,
                ), output.slot_id  # fmt: skip
            case SlotStateChanged():
                return ParkingSlotState(
                    slot_id=output.slot_id, slot_type=slot_type, state=output.state.value,
                    previous=output.previous.value, since=output.since,
                ), output.slot_id  # fmt: skip
            case SensorLowBattery():
                return SensorStatus(
                    sensor_id=output.sensor_id, slot_id=output.slot_id, online=True,
                    battery=output.battery, low_battery=True,
                ), output.sensor_id  # fmt: skip
            case SensorWentStale():
                return SensorStatus(
                    sensor_id=output.sensor_id, slot_id=output.slot_id, online=False,
                    last_heard=output.last_heard,
                ), output.sensor_id  # fmt: skip
            case VisitSessionLinked():
                return None
        return None

    def _publish(self, outputs: list[SlotOutput], now: datetime) -> None:
        assert self.model is not None
        if not outputs:
            return
        for publisher in self.publishers:
            for slot_id in touched_slots(outputs):
                publisher.publish_slot(self.model.view(slot_id))
            publisher.publish_summary(self.model.summary(), now)

    def _publish_all(self) -> None:
        assert self.model is not None
        for publisher in self.publishers:
            for view in self.model.views():
                publisher.publish_slot(view)
            publisher.publish_summary(self.model.summary(), self.clock())

    # --- technician actions ------------------------------------------------------------

    async def set_out_of_service(self, slot_id: SlotId, on: bool, reason: str) -> None:
        unit = Unit()
        save_out_of_service(unit, slot_id, on, reason, self.clock())
        await self.store.write(unit)
        await self.request(OutOfServiceSet(slot_id, on, reason))

    def reservation_subject(self, reservation_id: str | None) -> Subject:
        """Who a reservation is for (nobody known: an empty subject)."""
        found = self._subjects.get(ReservationId(reservation_id)) if reservation_id else None
        return found or Subject()

    async def reserve(
        self,
        slot_id: SlotId,
        reservation_id: str,
        until: datetime | None,
        subject: Subject | None = None,
    ) -> None:
        unit = Unit()
        save_reservation(unit, slot_id, reservation_id, until, self.clock(), subject=subject)
        await self.store.write(unit)
        self._subjects[ReservationId(reservation_id)] = subject or Subject()
        await self.request(ReservationSet(slot_id, ReservationId(reservation_id), until))

    async def cancel_reservation(self, slot_id: SlotId, reservation_id: str) -> None:
        unit = Unit()
        save_reservation(unit, slot_id, reservation_id, None, self.clock(), cancelled=True)
        await self.store.write(unit)
        self._subjects.pop(ReservationId(reservation_id), None)
        await self.request(ReservationCleared(slot_id, ReservationId(reservation_id)))
