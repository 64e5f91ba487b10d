"""The driver-session loop of one connector: idle -> plug in -> authorize -> start ->
charge until the driver leaves -> stop -> unplug, with seeded randomness.

It only uses the charger's public API and re-reads the connector's state on every turn,
so it copes with whatever the central system did in between (a remote start or stop, a
reservation, a reset, a change of availability).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.charger.model import Clock, open_to_a_start

if TYPE_CHECKING:
    from sim.charger.core import SimCharger


async def drive_connector(charger: SimCharger, evse: int, clock: Clock) -> None:
    from sim.charger.core import ChargerStateError

    config = charger.config
    rng = charger.rng
    connector = charger.connector(evse)

    def wall(sim_seconds: float) -> float:
        return sim_seconds / config.speed

    while True:
        tx = connector.transaction
        try:
            if tx is None and not connector.plugged:
                await clock.sleep(wall(rng.uniform(*config.idle_seconds)))
                if connector.transaction is not None or connector.plugged:
                    continue
                if not connector.operative or connector.fault is not None:
                    await charger.wait_change(evse, wall(config.linger_seconds[1]))
                    continue
                reservation = connector.reservation
                tag = reservation.id_tag if reservation else rng.choice(config.id_tags)
                await charger.plug_in(evse)
                await clock.sleep(wall(rng.uniform(5.0, 30.0)))
                status = await charger.authorize(tag)
                if status == "Accepted" and open_to_a_start(connector.transaction):
                    await charger.start(evse, tag)
            elif tx is not None:
                await _charge_until_departure(charger, evse, clock)
            else:
                # Plugged in, no session (finished, or refused): the driver leaves later.
                await charger.wait_change(evse, wall(rng.uniform(*config.linger_seconds)))
                if connector.transaction is None and connector.plugged:
                    await charger.unplug(evse)
        except ChargerStateError as err:
            charger.log.info("sim.driver.skipped", evse=evse, reason=str(err))
            await clock.sleep(1.0)


async def _charge_until_departure(charger: SimCharger, evse: int, clock: Clock) -> None:
    config = charger.config
    rng = charger.rng
    connector = charger.connector(evse)
    tx = connector.transaction
    if tx is None:
        return
    target_wh = rng.uniform(*config.session_energy_wh)
    deadline = clock.monotonic() + rng.uniform(*config.session_seconds) / config.speed
    while connector.transaction is tx:
        charged = connector.meter.register_wh - tx.meter_start_wh
        remaining = deadline - clock.monotonic()
        if charged >= target_wh or remaining <= 0:
            await charger.stop(evse, "Local")
            return
        await charger.wait_change(evse, min(remaining, 5.0))
