"""An MQTT broker inside the edge daemon, for the demo and small sites.

With ``[mqtt] embedded = true`` and nothing listening on the configured address,
:func:`site_broker` runs an amqtt broker (MQTT 3.1.1: QoS 0-2, retained messages, ``+``
and ``#`` wildcards, last will) in the daemon's event loop for as long as the daemon
runs. When a broker already listens there (a Mosquitto of the site), that one is used.

The embedded broker keeps retained messages in memory only: after a daemon restart the
edge republishes its slot states and sensors send theirs with their next heartbeat.
It accepts anonymous clients; a site that needs authentication or TLS runs Mosquitto.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

import structlog

from common.mqtt_url import broker_address
from edge.config import MqttSection

log = structlog.get_logger("edge.sensors.broker")


class EmbeddedBrokerError(Exception):
    """The embedded broker cannot start (a configuration problem: exit with the message)."""


class EmbeddedBroker:
    """``async with EmbeddedBroker(host, port):`` serves MQTT on ``host:port``."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def __aenter__(self) -> Self:
        from amqtt.broker import Broker
        from amqtt.errors import BrokerError

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        broker = Broker(config)
        try:
            await broker.start()
        except BrokerError as err:
            raise EmbeddedBrokerError(
                f"cannot run the embedded MQTT broker on {self.host}:{self.port}: {err}"
            ) from err
        self._broker = broker
        log.info("mqtt.broker.started", host=self.host, port=self.port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()
            log.info("mqtt.broker.stopped", host=self.host, port=self.port)


async def _listening(host: str, port: int) -> bool:
    try:
        async with asyncio.timeout(1.0):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


@contextlib.asynccontextmanager
async def site_broker(
    mqtt: MqttSection, url: str | None = None
) -> AsyncIterator[EmbeddedBroker | None]:
    """The site's broker for the daemon's lifetime: an embedded one when the config asks
    for it and nothing listens on ``url`` (default ``mqtt.url``), else None (use theirs)."""
    address = broker_address(url or mqtt.url)
    if not mqtt.embedded:
        yield None
        return
    if await _listening(address.host, address.port):
        log.info("mqtt.broker.external", host=address.host, port=address.port)
        yield None
        return
    if address.tls:
        raise EmbeddedBrokerError(
            "the embedded MQTT broker does not do TLS: use mqtt:// or run Mosquitto"
        )
    async with EmbeddedBroker(address.host, address.port) as broker:
        yield broker
