"""Throttling of failed OCPP upgrades: who failed how often, and who is locked out.

Plain rules over an injected monotonic clock (seconds): no sockets, no logging; the OCPP
server asks before it checks anything costly and reports each outcome.

Two scopes are counted apart: the peer's address (an IPv6 address by its /64, what one
host is usually given) and the charger id tried. ``failures`` failed attempts within
``window`` seconds lock the key for ``base * 2**k`` seconds, ``k`` being how many
lockouts the key had before, at most ``cap`` seconds. A key that stays quiet for
``cap`` seconds after its last lockout is forgotten, and with it its ``k``. A charger
that authenticates clears its id's record and makes that address one it is trusted
from: the id's lockout does not apply there (only that address's own), so somebody
guessing a charger's password from elsewhere does not lock the real charger out.

Memory is bounded: each scope keeps at most ``max_tracked`` keys, the least recently
failed one goes first (in practice one whose record has expired).
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

Clock = Callable[[], float]
TRUSTED_PER_CHARGER: Final = 4


class Scope(StrEnum):
    ADDRESS = "address"
    CHARGER = "charger"


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    failures: int = 5
    window: float = 60.0
    base: float = 30.0
    cap: float = 3600.0
    max_tracked: int = 10_000

    def __post_init__(self) -> None:
        if self.failures < 1 or self.max_tracked < 1:
            raise ValueError("failures and max_tracked must be at least 1")
        if not 0 < self.base <= self.cap or self.window <= 0:
            raise ValueError("need 0 < base <= cap and window > 0")

    def duration(self, strikes: int) -> float:
        """The lockout after ``strikes`` earlier ones: doubles each time, up to the cap."""
        return min(self.cap, self.base * float(2 ** min(strikes, 62)))


@dataclass(frozen=True, slots=True)
class Lockout:
    scope: Scope
    key: str
    retry_after: float  # seconds from now

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after)))


@dataclass(slots=True)
class _Record:
    window_start: float
    failures: int = 0
    strikes: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


def address_key(host: str) -> str:
    """The address a lockout applies to: IPv4 as it is, IPv6 by its /64 network."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class UpgradeThrottle:
    def __init__(self, policy: LockoutPolicy, clock: Clock) -> None:
        self.policy = policy
        self.clock = clock
        self._records: dict[Scope, OrderedDict[str, _Record]] = {
            Scope.ADDRESS: OrderedDict(),
            Scope.CHARGER: OrderedDict(),
        }
        self._trusted: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    def tracked(self, scope: Scope) -> int:
        return len(self._records[scope])

    def locked(self, address: str, charger: str | None) -> Lockout | None:
        """The lockout that refuses this attempt now, if any (the longer one of the two)."""
        now = self.clock()
        found: list[Lockout] = []
        record = self._records[Scope.ADDRESS].get(address)
        if record is not None and record.locked_until > now:
            found.append(Lockout(Scope.ADDRESS, address, record.locked_until - now))
        if charger is not None and address not in self._trusted.get(charger, ()):
            record = self._records[Scope.CHARGER].get(charger)
            if record is not None and record.locked_until > now:
                found.append(Lockout(Scope.CHARGER, charger, record.locked_until - now))
        return max(found, key=lambda lockout: lockout.retry_after, default=None)

    def failed(self, address: str, charger: str | None) -> list[Lockout]:
        """Count a failed attempt; returns the lockouts it started."""
        now = self.clock()
        started = [self._fail(Scope.ADDRESS, address, now)]
        if charger is not None:
            started.append(self._fail(Scope.CHARGER, charger, now))
        return [lockout for lockout in started if lockout is not None]

    def succeeded(self, address: str, charger: str) -> None:
        """The charger authenticated from ``address``: its id starts afresh there."""
        self._records[Scope.CHARGER].pop(charger, None)
        trusted = self._trusted.pop(charger, ())
        self._trusted[charger] = (address, *(a for a in trusted if a != address))[
            :TRUSTED_PER_CHARGER
        ]
        while len(self._trusted) > self.policy.max_tracked:
            self._trusted.popitem(last=False)

    def _fail(self, scope: Scope, key: str, now: float) -> Lockout | None:
        policy, records = self.policy, self._records[scope]
        self._forget_expired(records, now)
        record = records.pop(key, None)
        if record is None or now - record.window_start > policy.window:
            strikes = record.strikes if record is not None else 0
            record = _Record(window_start=now, strikes=strikes)
        records[key] = record  # now the most recently failed
        while len(records) > policy.max_tracked:
            records.popitem(last=False)
        record.failures += 1
        record.last_failure = now
        if record.failures < policy.failures:
            return None
        duration = policy.duration(record.strikes)
        record.strikes += 1
        record.locked_until = now + duration
        record.failures = 0
        record.window_start = now
        return Lockout(scope, key, duration)

    def _forget_expired(self, records: OrderedDict[str, _Record], now: float) -> None:
        # Oldest first: stop at the first record still worth keeping.
        quiet_for = max(self.policy.window, self.policy.cap)
        while records:
            key, record = next(iter(records.items()))
            if now - max(record.last_failure, record.locked_until) <= quiet_for:
                return
            del records[key]
