"""The client's address as the gateway believes it.

The socket peer, unless the peer is one of the configured ``trusted_proxies``: then the
``X-Forwarded-For`` chain is read from the right (the entries proxies appended), skipping
trusted proxies, and the first address that is not one is the client. A header sent by
anyone else is ignored: a client cannot choose its own address (and so its own rate
limit budget) by sending ``X-Forwarded-For``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(items: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    if peer is None:
        return "unknown"
    if not trusted or forwarded_for is None or not _trusted(peer, trusted):
        return peer
    client = peer
    for entry in reversed(forwarded_for.split(",")):
        candidate = entry.strip()
        try:
            ipaddress.ip_address(candidate)
        except ValueError:
            break  # garbage: believe nothing further left
        client = candidate
        if not _trusted(candidate, trusted):
            break
    return client
