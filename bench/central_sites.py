"""The events of a light simulated site for the central scale bench: a realistic mix, valid
for central's consumers, numbered gap-free as an edge numbers them. No I/O.

Every charger of a site runs one charging session after another, each the script of
:data:`SESSION_SCRIPT` (the table docs/benchmarks.md shows): the car arrives, the bay
sensor reports, the charger goes Charging, the session starts, progress every minute while
it charges, it completes, the charger is Available again, the car leaves. A site takes its
chargers in turn, one event each, and each charger begins at a random point of its
script, as a site that was running before the bench: the mix is the script's from the
first event. A session found under way ends as a real one would, though central never
saw it start (its progress is ignored, its completion makes the session:
:attr:`SiteEvents.unseen_starts` counts them).

Events are JSON-ready dicts (CloudEvents with ``dataschema``), built from templates that
:func:`check_events` validates with the contract's models; the bench checks a sample of
them before it starts and the tests check more.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from common.timestamps import format_timestamp
from contract.envelope import CloudEvent, site_source, topic_for
from contract.events import DATA_MODELS, dataschema, parse_data

PROGRESS_PER_SESSION: Final = 60  # a one-hour charge, progress every minute

# (event type, events per session, what it is): the mix of the bench and of docs
SESSION_MIX: Final[tuple[tuple[str, int, str], ...]] = (
    ("parking.occupied", 1, "the car arrives in the charger's bay"),
    ("sensor.status", 1, "the bay sensor's report (online, battery)"),
    ("charger.status", 2, "the connector goes Charging, then Available"),
    ("charging.started", 1, "the session starts"),
    ("charging.progress", PROGRESS_PER_SESSION, "energy and power every minute while charging"),
    ("charging.completed", 1, "the session ends, with its energy"),
    ("parking.vacated", 1, "the car leaves"),
)

# the order of one session's events; "progress" repeats
SESSION_SCRIPT: Final = (
    "parking.occupied",
    "sensor.status",
    "charger.status:Charging",
    "charging.started",
    "charging.progress",
    "charging.completed",
    "charger.status:Available",
    "parking.vacated",
)
_PROGRESS_STEP: Final = SESSION_SCRIPT.index("charging.progress")
_TICK: Final = timedelta(milliseconds=1)
_BEFORE: Final = timedelta(hours=1)  # when a session found under way began


@dataclass
class _Charger:
    """One charger and its bay: where it is in its current session."""

    number: int
    step: int = 0
    progress_left: int = 0
    session: int = 0
    energy_wh: float = 0.0
    started_at: datetime | None = None
    arrived_at: datetime | None = None
    last_at: datetime | None = None
    started_here: bool = True  # this session's charging.started is (or will be) sent

    @property
    def charger_id(self) -> str:
        return f"CP{self.number}"

    @property
    def slot_id(self) -> str:
        return f"B{self.number}"


@dataclass
class SiteEvents:
    """The event stream of one site: :meth:`take` the next ``n`` events."""

    site_id: str
    chargers: int = 20
    progress_per_session: int = PROGRESS_PER_SESSION
    seed: int = 0
    next_sequence: int = 1
    counts: Counter[str] = field(default_factory=Counter)  # events made, by type
    unseen_starts: int = 0  # sessions completed whose start came before the bench
    _rng: random.Random = field(init=False)
    _chargers: list[_Charger] = field(init=False)
    _turn: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"{self.site_id}:{self.seed}")
        self._chargers = [_Charger(n + 1) for n in range(self.chargers)]
        progress = self.progress_per_session
        for c in self._chargers:  # somewhere in a session, as a site that ran before
            at = self._rng.randrange(len(SESSION_SCRIPT) - 1 + progress)
            c.progress_left = progress - max(0, min(at - _PROGRESS_STEP, progress))
            c.step = at if at <= _PROGRESS_STEP else max(_PROGRESS_STEP, at - progress + 1)
            if c.step == _PROGRESS_STEP and c.progress_left == 0:
                c.step += 1
            c.started_here = c.step <= SESSION_SCRIPT.index("charging.started")
        self._source = site_source(self.site_id)

    @property
    def made(self) -> int:
        return self.next_sequence - 1

    @property
    def sessions_started(self) -> int:
        return self.counts["charging.started"]

    def take(self, n: int, now: datetime) -> list[dict[str, Any]]:
        """The next ``n`` events, stamped ``now`` (a session's own times move forward)."""
        out = []
        for _ in range(n):
            charger = self._chargers[self._turn]
            self._turn = (self._turn + 1) % len(self._chargers)
            out.append(self._next(charger, now))
        return out

    def _next(self, c: _Charger, now: datetime) -> dict[str, Any]:
        # a session's times strictly increase, even for events made in the same instant
        at = now if c.last_at is None or now > c.last_at else c.last_at + _TICK
        c.last_at = at
        kind = SESSION_SCRIPT[c.step]
        event_type, _, status = kind.partition(":")
        data = self._data(c, event_type, status, at)
        if event_type == "charging.progress" and c.progress_left > 1:
            c.progress_left -= 1  # the script stays on progress
        elif event_type == "parking.vacated":
            c.step, c.progress_left, c.session = 0, self.progress_per_session, c.session + 1
            c.started_here, c.started_at, c.arrived_at = True, None, None
        else:
            c.step += 1
        if c.step == _PROGRESS_STEP and c.progress_left == 0:
            c.step += 1  # a first session cut before any progress: started, then completed
        return self._envelope(event_type, data, at)

    def _data(self, c: _Charger, event_type: str, status: str, at: datetime) -> dict[str, Any]:
        subject = {"vehicle_id": None, "driver_id": None}
        session_id = f"{self.site_id}-{c.charger_id}-{c.session}"
        visit_id = f"{self.site_id}-{c.slot_id}-{c.session}"
        if event_type == "parking.occupied":
            c.arrived_at = at
            return {
                "slot_id": c.slot_id,
                "slot_type": "ev",
                "visit_id": visit_id,
                "arrived_at": format_timestamp(at),
                **subject,
                "id_tag": None,
            }
        if event_type == "sensor.status":
            battery = self._rng.randint(20, 100)
            return {"sensor_id": f"S{c.number}", "slot_id": c.slot_id, "online": True,
                    "battery": battery, "rssi": -70}  # fmt: skip
        if event_type == "charger.status":
            return {"charger_id": c.charger_id, "evse_id": 1, "connector_id": 1,
                    "status": status, "online": True}  # fmt: skip
        tag = f"TAG-{self.site_id}-{c.number}"
        if event_type == "charging.started":
            c.started_at, c.energy_wh = at, 0.0
            return {
                "session_id": session_id,
                "charger_id": c.charger_id,
                "evse_id": 1,
                "connector_id": 1,
                "transaction_id": c.session + 1,
                "meter_start_wh": 0,
                "started_at": format_timestamp(at),
                "slot_id": c.slot_id,
                **subject,
                "id_tag": tag,
            }
        if event_type == "charging.progress":
            c.energy_wh += 183.0  # 11 kW for a minute
            return {
                "session_id": session_id,
                "charger_id": c.charger_id,
                "evse_id": 1,
                "transaction_id": c.session + 1,
                "energy_wh": c.energy_wh,
                "power_w": 11000.0,
                "at": format_timestamp(at),
                **subject,
                "id_tag": tag,
            }
        if event_type == "charging.completed":
            self.unseen_starts += not c.started_here
            return {
                "session_id": session_id,
                "charger_id": c.charger_id,
                "evse_id": 1,
                "transaction_id": c.session + 1,
                "energy_wh": c.energy_wh,
                "started_at": format_timestamp(c.started_at or at - _BEFORE),
                "stopped_at": format_timestamp(at),
                "reason": "EVDisconnected",
                "slot_id": c.slot_id,
                **subject,
                "id_tag": tag,
            }
        assert event_type == "parking.vacated", event_type
        arrived = c.arrived_at or at - _BEFORE
        return {
            "slot_id": c.slot_id,
            "slot_type": "ev",
            "visit_id": visit_id,
            "arrived_at": format_timestamp(arrived),
            "departed_at": format_timestamp(at),
            "duration_s": (at - arrived).total_seconds(),
            **subject,
            "id_tag": None,
        }

    def _envelope(self, event_type: str, data: dict[str, Any], at: datetime) -> dict[str, Any]:
        sequence = self.next_sequence
        self.next_sequence += 1
        self.counts[event_type] += 1
        return {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": self._source,
            "type": event_type,
            "time": format_timestamp(at),
            "dataschema": dataschema(event_type),
            "sequence": sequence,
            "data": data,
        }


def topics_of(events: Iterable[dict[str, Any]]) -> frozenset[str]:
    """The bus topics a batch of events goes to."""
    return frozenset(topic_for(event["type"]) for event in events)


def check_events(events: Iterable[dict[str, Any]]) -> None:
    """Raise ValueError (pydantic's) if an event or its data does not fit the contract."""
    for raw in events:
        event = CloudEvent.model_validate(raw)
        parse_data(DATA_MODELS[event.type], event)


@dataclass(frozen=True)
class Expected:
    """What the consumers should hold once every event of some sites is applied."""

    events: int
    by_type: dict[str, int]
    sessions: int  # charging sessions central knows of: started, or completed unseen

    @classmethod
    def of(cls, sites: Iterable[SiteEvents]) -> Expected:
        total: Counter[str] = Counter()
        unseen = 0
        for site in sites:
            total.update(site.counts)
            unseen += site.unseen_starts
        return cls(sum(total.values()), dict(total), total["charging.started"] + unseen)

    def count(self, *types: str) -> int:
        return sum(self.by_type.get(t, 0) for t in types)
