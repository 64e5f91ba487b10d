"""The site's load manager at work: every cycle it reads the site, decides
(:func:`edge.core.power.decide.decide`) and sends what changed to the chargers.

Limits that go down are sent first; the raises only once every lower one was accepted
(:mod:`edge.core.power.changes`). A charger that refuses a profile is *uncontrolled* from
then on (until it boots again) and the others are decided again before anything is
raised. Each offer is a lease (:mod:`edge.core.power.profiles`), renewed at half its
time, so a charger that loses the edge falls back to the failsafe by itself. A charger's
maximum and default profiles are sent after each of its boots, and its session limits
then sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import structlog

from common.timestamps import format_timestamp, timestamp_or_none
from contract.events import PowerLimitChanged, PowerOvershoot
from edge.config import ChargerConfig, SiteConfig
from edge.core import commands as cmd
from edge.core.ids import ChargerId
from edge.core.model import BootStatus, Charger, Session
from edge.core.power.changes import changes
from edge.core.power.decide import decide
from edge.core.power.model import (
    ChargerSpec,
    Circuit,
    Decision,
    OfferState,
    PowerState,
    SessionLoad,
    SiteLimits,
    Strategy,
    Turn,
    limit_in_force,
)
from edge.core.power.profiles import default_profile, maximum_profile, session_profile
from edge.core.profiles import RateUnit, SetChargingProfile
from edge.ocpp.charger_calls import ChargerOffline, CommandTimeout, InvalidCommand, send_command
from edge.ocpp.connection import CallFailed
from edge.ocpp.server import OcppServer
from edge.services.changes import SiteChange
from edge.services.site import Site
from edge.storage import site_sql as repo
from edge.storage.site_sql import add_outbox_event
from edge.storage.slots_sql import reservation_ends
from edge.storage.sqlite import Unit
from edge.storage.sync_sql import set_meta

log = structlog.get_logger(__name__)

OVERRIDE_KEY: Final = "power.site_limit_override"
STEERED: Final = (OfferState.CHARGING, OfferState.QUEUED, OfferState.RESTING)  # sent


@dataclass(frozen=True, slots=True)
class Held:
    """The limit a charger accepted for a session, and when (its lease began)."""

    limit_w: float
    at: datetime


@dataclass(frozen=True, slots=True)
class SiteLimitOverride:
    """A technician's (or central's) temporary site limit."""

    limit_w: float
    until: datetime | None
    set_by: str

    def document(self) -> dict[str, Any]:
        until = None if self.until is None else format_timestamp(self.until)
        return {"limit_kw": self.limit_w / 1000, "until": until, "set_by": self.set_by}


class LoadManager:
    def __init__(
        self, config: SiteConfig, site: Site, server: OcppServer, clock: Callable[[], datetime]
    ) -> None:
        self.config = config
        self.power = config.power
        self.site = site
        self.server = server
        self.clock = clock
        self.decision: Decision | None = None
        self.decided_at: datetime | None = None
        self.override: SiteLimitOverride | None = None
        self.grid: tuple[float, datetime] | None = None  # the grid meter's last reading
        self.uncontrolled: dict[ChargerId, str] = {}  # charger -> why
        self._held: dict[str, Held] = {}
        self._turns: dict[str, Turn] = {}
        self._set_up: dict[ChargerId, datetime | None] = {}  # the boot each was set up after
        self._units: dict[ChargerId, RateUnit] = {}  # the rate unit each charger said it takes
        self._departures: dict[int, datetime | None] = {}  # by OCPP reservation id
        self._defaults: dict[ChargerId, datetime] = {}  # when each default lease began
        self._wake = asyncio.Event()
        # called after every decision and limit change (metrics, live views); never block
        self.observers: list[Callable[[LoadManager], None]] = []
        site.observe(self._on_change)

    @property
    def enabled(self) -> bool:
        return self.power.enabled

    def grid_power(self, watts: float, at: datetime) -> None:
        """A grid meter reading (MQTT ``evpark/<site>/grid/power``)."""
        self.grid = (watts, at)

    @property
    def other_load_w(self) -> float:
        """What the rest of the building draws behind the connection, as the grid meter
        says: all of its reading (``building``) or its reading less the chargers' own
        (``total``). A meter that fell silent counts at its last reading."""
        if self.grid is None or self.power.grid_meter == "none":
            return 0.0
        watts = self.grid[0]
        if self.power.grid_meter == "total":
            watts -= sum(max(0.0, s.power_w or 0.0) for s in self.site.active_sessions())
        return max(0.0, watts)

    def _on_change(self, change: SiteChange) -> None:
        if change.kind in ("charger", "session"):  # a boot, a connection, a car came or went
            self._wake.set()

    # --- lifetime ------------------------------------------------------------------------

    async def run(self) -> None:
        """Decide every ``cycle_seconds``, and at once when a car or charger comes or goes;
        only run when :attr:`enabled`."""
        self.override = await self.site.store.read(_read_override)
        log.info("power.started", site_limit_kw=self.power.site_limit_kw,
                 strategy=self.power.strategy, override=self.override)  # fmt: skip
        while True:
            try:
                await self.cycle()
            except Exception:  # one bad cycle must not end load management
                log.exception("power.cycle_failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.power.cycle_seconds):
                    await self._wake.wait()
            self._wake.clear()

    async def set_override(self, limit_kw: float | None, until: datetime | None, by: str) -> None:
        """A temporary site limit (None: back to the configured one), kept over restarts
        and told to central."""
        self.override = None if limit_kw is None else SiteLimitOverride(limit_kw * 1000, until, by)
        unit = Unit()
        set_meta(
            unit,
            OVERRIDE_KEY,
            json.dumps(None if self.override is None else self.override.document()),
        )
        assert self.power.site_limit_kw is not None
        changed = PowerLimitChanged(
            limit_kw=self.site_limit_w() / 1000,
            configured_kw=self.power.site_limit_kw,
            until=None if self.override is None else self.override.until,
            set_by=by,
        )
        add_outbox_event(unit, changed, None, self.clock())
        await self.site.store.write(unit)
        log.info("power.site_limit_set", limit_kw=limit_kw, until=until, by=by)
        self._wake.set()
        for observer in self.observers:
            observer(self)

    # --- one cycle -----------------------------------------------------------------------

    async def cycle(self) -> Decision:
        now = self.clock()
        if (
            self.override is not None
            and self.override.until is not None
            and self.override.until <= now
        ):
            await self.set_override(None, None, "expiry")
        await self._set_up_booted(now)
        await self._renew_defaults(now)
        await self._learn_departures()
        decision = decide(self.state(now), now)
        self._turns = decision.turns
        for charger_id in decision.alerts:
            await self._mark_uncontrolled(ChargerId(charger_id), "draws more than its limit")
        wanted = {o.session_id: o.limit_w for o in decision.offers if o.state in STEERED}
        self._held = {k: v for k, v in self._held.items() if k in wanted}
        held: dict[str, float | None] = {k: h.limit_w for k, h in self._held.items()}
        plan = changes(held, wanted)
        renew_before = now - timedelta(seconds=self.power.lease_seconds / 2)
        renewals = {
            k: h.limit_w
            for k, h in self._held.items()
            if h.at <= renew_before and k not in plan.raise_
        }
        settled = await self._send({**renewals, **plan.lower}, now)
        if settled:
            await self._send(plan.raise_, now)
        else:
            self._wake.set()  # decide again, with what refused, before raising anything
        self.decision, self.decided_at = decision, now
        for observer in self.observers:
            observer(self)
        return decision

    def state(self, now: datetime) -> PowerState:
        power = self.power
        assert power.site_limit_kw is not None
        limits = SiteLimits(
            site_w=power.site_limit_kw * 1000,
            min_session_w=power.min_session_kw * 1000,
            failsafe_w=power.failsafe_kw * 1000,
            strategy=Strategy(power.strategy),
            phase_a=power.phase_limit_a,
            circuits=tuple(
                Circuit(c.id, c.limit_kw * 1000, frozenset(c.chargers)) for c in power.circuits
            ),
            react_s=power.react_seconds,
            rotate_s=power.rotate_minutes * 60,
        )
        sessions = [s for s in self.site.active_sessions() if not s.refused]
        busy: dict[str, int] = {}
        for s in sessions:
            busy[s.charger_id] = busy.get(s.charger_id, 0) + 1
        chargers = list(self.site.chargers.values())
        return PowerState(
            limits=limits,
            chargers=tuple(self.spec(c) for c in chargers),
            sessions=tuple(self._load(s) for s in sessions),
            turns=self._turns,
            other_load_w=self.other_load_w,
            # a car plugged in where the default profile's lease lapsed takes the failsafe
            idle_evses={
                c.id: max(0, _evse_count(c) - busy.get(c.id, 0))
                for c in chargers
                if c.first_seen is not None and not self._default_holds(c, now)
            },
            site_limit_override_w=None if self.override is None else self.override.limit_w,
        )

    def _configured(self, charger: Charger) -> ChargerConfig:
        """Its entry in the site file; the defaults for a charger admitted without one."""
        return self.config.charger(charger.id) or ChargerConfig(id=charger.id)

    def spec(self, charger: Charger, *, external: bool = True) -> ChargerSpec:
        """What the decision knows of the charger; ``external``: capped by a limit another
        source (an EMS, the grid operator) set on the whole station."""
        configured = self._configured(charger)
        cap = self.site.external_limits.get((charger.id, 0)) if external else None
        return ChargerSpec(
            charger.id,
            min(configured.max_kw * 1000, math.inf if cap is None else cap),
            configured.phases,
            configured.phase,
            configured.priority,
            configured.profile_unit or self._units.get(charger.id, "A"),
            controllable=charger.id not in self.uncontrolled,
            connected=charger.connected,
        )

    def site_limit_w(self, *, configured: bool = False) -> float:
        """The site limit in force (``configured``: the one in the site file)."""
        assert self.power.site_limit_kw is not None
        in_file = self.power.site_limit_kw * 1000
        if configured:
            return in_file
        return limit_in_force(in_file, None if self.override is None else self.override.limit_w)

    def _load(self, session: Session) -> SessionLoad:
        held = self._held.get(session.id)
        departure = session.departure
        if departure is None and session.reservation_id is not None:
            departure = self._departures.get(session.reservation_id)
        target = session.energy_target_wh
        return SessionLoad(
            session.id,
            session.charger_id,
            session.evse_id,
            session.started_at,
            measured_w=session.power_w,
            measured_at=session.last_update,
            offered_w=None if held is None else held.limit_w,
            offered_at=None if held is None else held.at,
            departure=departure,
            energy_needed_wh=None if target is None else max(0.0, target - session.energy_wh),
            cap_w=self.site.external_limits.get((session.charger_id, session.evse_id)),
        )

    async def _learn_departures(self) -> None:
        """The booked departure of sessions begun on a reservation (its end)."""
        unknown = {
            s.reservation_id
            for s in self.site.active_sessions()
            if s.reservation_id is not None and s.reservation_id not in self._departures
        }
        if unknown:
            ends = await self.site.store.read(lambda c: reservation_ends(c, unknown))
            self._departures.update({key: ends.get(key) for key in unknown})

    # --- talking to chargers -------------------------------------------------------------

    async def _send(self, limits: dict[str, float], now: datetime) -> bool:
        """Send each session's limit; False if any charger refused one or did not answer
        (its holding is then unknown, and it is sent again next cycle)."""
        results: dict[str, bool] = {}

        async def one(session_id: str, limit_w: float) -> None:
            session = self.site.active_session(session_id)
            charger = None if session is None else self.site.chargers.get(session.charger_id)
            if session is None or charger is None:
                return
            spec = self.spec(charger)
            failsafe = self.power.failsafe_kw * 1000
            command = session_profile(spec, session.evse_id, session.transaction_id, limit_w,
                                      failsafe, self.power.lease_seconds, now)  # fmt: skip
            results[session_id] = await self._profile(charger.id, command)
            if results[session_id]:
                self._held[session_id] = Held(limit_w, now)
            else:
                self._held.pop(session_id, None)

        async with asyncio.TaskGroup() as tasks:
            for session_id, limit_w in limits.items():
                tasks.create_task(one(session_id, limit_w))
        return all(results.values())

    async def _profile(self, charger_id: ChargerId, command: SetChargingProfile) -> bool:
        """True if the charger accepted the profile; a refusal makes it uncontrolled."""
        try:
            outcome = await send_command(self.server, charger_id, command)
        except (ChargerOffline, CommandTimeout) as err:
            log.info("power.profile_unanswered", charger=charger_id, error=type(err).__name__)
            return False
        except (InvalidCommand, CallFailed) as err:
            await self._mark_uncontrolled(charger_id, f"cannot take a charging profile: {err}")
            return False
        if not outcome.accepted:
            await self._mark_uncontrolled(
                charger_id, f"answered {outcome.status} to a charging profile"
            )
            return False
        return True

    async def _set_up_booted(self, now: datetime) -> None:
        """After a boot: the maximum and default profiles, and the session limits again
        (a reboot forgets them)."""
        for charger in list(self.site.chargers.values()):
            if (
                not charger.connected
                or charger.boot_status is BootStatus.PENDING  # provisioning comes first
                or self._set_up.get(charger.id, False) == charger.last_boot
            ):
                continue
            self._set_up[charger.id] = charger.last_boot
            self.uncontrolled.pop(charger.id, None)  # a new boot, a new chance
            for s in self.site.active.of_charger(charger.id):
                self._held.pop(s.id, None)
            await self._learn_rate_unit(charger)
            # the charger's own maximum: another source's limit may be lifted later
            spec = self.spec(charger, external=False)
            self._defaults.pop(charger.id, None)  # until renewed, idle EVSEs are kept free
            if await self._profile(charger.id, maximum_profile(spec, now)):
                await self._renew_default(charger, now)

    async def _renew_defaults(self, now: datetime) -> None:
        """Each connected charger's default profile before its lease runs out."""
        due = now - timedelta(seconds=self.power.lease_seconds / 2)
        for charger in list(self.site.chargers.values()):
            held = self._defaults.get(charger.id)
            if charger.connected and held is not None and held <= due:
                await self._renew_default(charger, now)

    async def _renew_default(self, charger: Charger, now: datetime) -> None:
        command = default_profile(
            self.spec(charger), self.power.failsafe_kw * 1000, self.power.lease_seconds, now
        )
        if await self._profile(charger.id, command):
            self._defaults[charger.id] = now
        else:
            self._defaults.pop(charger.id, None)

    def _default_holds(self, charger: Charger, now: datetime) -> bool:
        """Its default profile still offers new cars nothing (its lease is current)."""
        held = self._defaults.get(charger.id)
        return held is not None and (now - held).total_seconds() < self.power.lease_seconds

    async def _learn_rate_unit(self, charger: Charger) -> None:
        """The unit its profiles are written in, as the charger says it takes them (1.6
        ChargingScheduleAllowedChargingRateUnit, 2.0.1 SmartChargingCtrlr.RateUnit); amps
        when it takes both or says nothing, since every AC charger knows them."""
        if self._configured(charger).profile_unit is not None:
            return
        v16 = charger.version == "ocpp1.6"
        ask: cmd.Command = (
            cmd.GetConfiguration(("ChargingScheduleAllowedChargingRateUnit",))
            if v16
            else cmd.GetVariables((cmd.VariableRef("SmartChargingCtrlr", "RateUnit"),))
        )
        try:
            answer = await send_command(self.server, charger.id, ask)
        except (ChargerOffline, CommandTimeout, InvalidCommand, CallFailed) as err:
            log.info("power.rate_unit_unknown", charger=charger.id, error=str(err))
            return
        if v16:
            found = answer.detail.get("configurationKey") or [{}]
            value = str(found[0].get("value") or "")
        else:
            found = answer.detail.get("getVariableResult") or [{}]
            value = str(found[0].get("attributeValue") or "")
        units = {u.strip() for u in value.split(",")}
        self._units[charger.id] = (
            "W" if units & {"W", "Power"} and not units & {"A", "Current"} else "A"
        )

    async def _mark_uncontrolled(self, charger_id: ChargerId, why: str) -> None:
        """From now on counted at its worst: a charger event, and central is told."""
        if self.uncontrolled.get(charger_id) == why:
            return
        self.uncontrolled[charger_id] = why
        log.warning("power.charger_uncontrolled", charger=charger_id, reason=why)
        measured = [s.power_w for s in self.site.active.of_charger(charger_id) if s.power_w]
        offered = [self._held[s.id].limit_w for s in self.site.active.of_charger(charger_id)
                   if s.id in self._held]  # fmt: skip
        event = PowerOvershoot(
            charger_id=charger_id,
            reason=why[:255],
            measured_kw=round(sum(measured) / 1000, 3) if measured else None,
            offered_kw=round(sum(offered) / 1000, 3) if offered else None,
        )
        now = self.clock()
        unit = Unit()
        repo.add_charger_event(unit, charger_id, now, "power_alert", {"reason": why})
        add_outbox_event(unit, event, charger_id, now)
        await self.site.store.write(unit)


def _evse_count(charger: Charger) -> int:
    return max(1, len([e for e in charger.evses if e != 0]))


def _read_override(conn: Any) -> SiteLimitOverride | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (OVERRIDE_KEY,)).fetchone()
    data = None if row is None else json.loads(row[0])
    if not isinstance(data, dict):
        return None
    return SiteLimitOverride(
        float(data["limit_kw"]) * 1000,
        timestamp_or_none(data.get("until")),
        str(data.get("set_by", "")),
    )
