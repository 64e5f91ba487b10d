"""Simulated occupancy sensors over MQTT: one sensor (``sensor``), the sensors of a site
(``field``) and what the simulator reads of a site file (``site``); `evpark sim sensors`
is in ``sim.cli``."""

from sim.sensors.field import SensorField, run_sensors
from sim.sensors.sensor import QUIET, Noise, SimSensor

__all__ = ["QUIET", "Noise", "SensorField", "SimSensor", "run_sensors"]
