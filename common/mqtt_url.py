"""Where a site's MQTT broker is: its URL read into host, port and TLS.

The edge's sensor adapter, its embedded broker and the simulated sensors must agree on
what an address means, so there is one reading of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool


def broker_address(url: str) -> BrokerAddress:
    """``mqtt://host[:1883]`` or ``mqtts://host[:8883]``."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"not an MQTT URL: {url!r} (mqtt://host:port or mqtts://host:port)")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(parts.hostname, parts.port or (8883 if tls else 1883), tls)
