"""Property-based OCPP fuzz against a running edge daemon (issue 10, point 2).

For every request a charger can send, in both versions, hypothesis generates payloads
that are valid against the official schema but extreme (``tests/ocpp_strategies.py``)
and a fuzzing charger sends them to ``evpark edge run`` in its own process, while a
canary charger on another connection sends heartbeats (``tests/ocpp_fuzz_site.py``).
Each message must get a CALLRESULT valid against its response schema, or a CALLERROR
with one of its version's codes other than InternalError, within a bounded wait; the
canary must keep being answered; the daemon's log must show no error and no traceback;
at the end /healthz is ok and SIGTERM stops the daemon with exit code 0.

CI runs a fixed number of derandomized examples per action (the same ones every time,
so a failure reproduces as it is); ``python -m bench.ocpp_fuzz`` runs the same fuzz
long, with random seeds (see bench/README.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis.strategies import SearchStrategy

from edge.core.meter import ENERGY, normalise
from ocpp_handlers.schemas import Version
from tests.ocpp_fuzz_site import FuzzSite, fuzz_action, fuzz_sessions, fuzz_settings
from tests.ocpp_strategies import (
    CHARGER_ACTIONS,
    SPEC_ERROR_CODES,
    free_values,
    has_lone_surrogate,
    integers,
    payloads,
    timestamps,
)

T = TypeVar("T")

# a failing example may be a 64 KiB string: its repr is the report, however long
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

# Examples per action in CI: 39 actions, about 20 s in all on a loaded 2-core machine.
EXAMPLES = 12
ALL_ACTIONS = [
    pytest.param(version, action, id=f"{version.value}-{action}")
    for version, actions in CHARGER_ACTIONS.items()
    for action in actions
]


class _Fuzzed:
    """The module's daemon, restarted if an action broke it (so one failure does not
    fail every later action); the restarts are counted and fail the last test."""

    def __init__(self, workdir: Path) -> None:
        self.site = FuzzSite(workdir)
        self.restarts = 0

    def ready(self) -> FuzzSite:
        canary = self.site.canary
        if not self.site.edge.alive() or canary is None or canary.failures:
            self.restarts += 1
            self.site.restart()
        return self.site


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Fuzzed]:
    fuzzed = _Fuzzed(tmp_path_factory.mktemp("ocpp-fuzz"))
    fuzzed.site.start()
    try:
        yield fuzzed
    finally:
        fuzzed.site.close()
        fuzzed.site.edge.stop()


@pytest.fixture
def site(fuzzed: _Fuzzed) -> FuzzSite:
    return fuzzed.ready()


# --- the strategies themselves --------------------------------------------------------


def _drawn(strategy: SearchStrategy[T], examples: int = 300) -> list[T]:
    """What a strategy draws in CI's fixed examples (no shrinking, unlike ``find``)."""
    values: list[T] = []

    @settings(fuzz_settings(examples))
    @given(value=strategy)
    def draw(value: T) -> None:
        values.append(value)

    draw()
    return values


def test_strategies_reach_the_extremes() -> None:
    assert {2**31, 2**63, 2**64 - 1, 2**64} <= set(_drawn(integers(), 100))
    assert max(_drawn(integers(None, 2**31), 100)) == 2**31
    times = _drawn(timestamps(), 100)
    assert any(t.startswith("0001") and t.endswith("+14:00") for t in times)
    assert any(t.startswith("9999") for t in times)
    assert any(t[16:19] == ":60" for t in times)
    transfers = _drawn(payloads(Version.V16, "DataTransfer"))
    data = [str(p.get("data", "")) for p in transfers]
    assert max(map(len, data)) == 64 * 1024
    assert any("\x00" in d or "\u202e" in d for d in data)
    assert any(has_lone_surrogate(p) for p in transfers)
    assert max(map(_depth, _drawn(free_values(), 100))) > 254
    tags = _drawn(payloads(Version.V16, "Authorize"), 100)
    assert {len(tag["idTag"]) for tag in tags} >= {0, 20}  # maxLength 20, and empty
    hashes = _drawn(payloads(Version.V201, "Authorize"), 100)
    assert max(len(p.get("iso15118CertificateHashData", ())) for p in hashes) == 4  # maxItems


def _depth(value: Any) -> int:
    """How deep JSON containers nest (without recursion: they nest 500 deep)."""
    deepest, level = 0, [(value, 0)]
    while level:
        node, depth = level.pop()
        deepest = max(deepest, depth)
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        level.extend((child, depth + 1) for child in children)
    return deepest


def test_spec_error_codes_differ_between_versions() -> None:
    assert "OccurenceConstraintViolation" in SPEC_ERROR_CODES[Version.V16]
    assert "FormationViolation" in SPEC_ERROR_CODES[Version.V16]
    assert "OccurrenceConstraintViolation" in SPEC_ERROR_CODES[Version.V201]
    assert "RpcFrameworkError" in SPEC_ERROR_CODES[Version.V201]
    assert "FormatViolation" not in SPEC_ERROR_CODES[Version.V16]


# --- the fuzz -------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "action"), ALL_ACTIONS)
def test_every_extreme_message_is_answered_and_disturbs_no_one(
    site: FuzzSite, version: Version, action: str
) -> None:
    sent = site.sent
    fuzz_action(site, version, action, fuzz_settings(EXAMPLES))
    assert site.sent > sent


@pytest.mark.parametrize("version", list(Version), ids=[v.value for v in Version])
def test_extreme_sessions_are_answered_and_disturb_no_one(site: FuzzSite, version: Version) -> None:
    # sequences: a StartTransaction (1.6) or TransactionEvent (2.0.1) with extreme values,
    # then meter values, statuses and the end of that same session
    sent = site.sent
    fuzz_sessions(site, version, fuzz_settings(EXAMPLES))
    assert site.sent > sent


# --- what the fuzz found, as plain examples -------------------------------------------


def _answer(site: FuzzSite, version: Version, action: str, payload: dict[str, Any]) -> list[Any]:
    charger = site.chargers[version]
    charger.connect()
    frame = charger.call(action, payload)
    assert site.edge.new_log_problems() == []
    return frame


@pytest.mark.parametrize(
    ("version", "action", "payload"),
    [
        pytest.param(
            Version.V16,
            "StartTransaction",
            {
                "connectorId": 1,
                "idTag": "",
                "meterStart": 0,
                "timestamp": "0001-01-01T00:00:00+14:00",
            },
            id="1.6-start-year-1-east",
        ),
        pytest.param(
            Version.V16,
            "MeterValues",
            {
                "connectorId": 0,
                "meterValue": [
                    {"timestamp": "0001-01-01T00:00:00+14:00", "sampledValue": [{"value": ""}]}
                ],
            },
            id="1.6-meter-values-year-1-east",
        ),
        pytest.param(
            Version.V201,
            "StatusNotification",
            {
                "timestamp": "9999-12-31T23:59:59-14:00",
                "connectorStatus": "Available",
                "evseId": 0,
                "connectorId": 0,
            },
            id="2.0.1-status-year-9999-west",
        ),
    ],
)
def test_a_time_with_no_utc_equivalent_is_refused_not_a_crash(
    site: FuzzSite, version: Version, action: str, payload: dict[str, Any]
) -> None:
    # found by the fuzz: these raised OverflowError in the handlers (InternalError, a
    # traceback per message) when the time was converted to UTC to be stored
    frame = _answer(site, version, action, payload)
    assert frame[0] == 4, frame
    assert frame[2] == "PropertyConstraintViolation"
    assert frame[3].endswith("timestamp: out of the range of a time")


def test_a_meter_multiplier_no_meter_has_drops_the_value_not_the_message(site: FuzzSite) -> None:
    # found by the fuzz: 10.0**multiplier raised OverflowError (InternalError, a
    # traceback per message); unreadable values are dropped like any other
    sample = {"value": 1.0, "unitOfMeasure": {"unit": "Wh", "multiplier": 400}}
    frame = _answer(
        site,
        Version.V201,
        "MeterValues",
        {
            "evseId": 1,
            "meterValue": [{"timestamp": "2026-01-01T08:00:00Z", "sampledValue": [sample]}],
        },
    )
    assert frame[0] == 3, frame
    assert normalise(ENERGY, 1.0, "Wh", 400) is None
    assert normalise(ENERGY, "1e308", "kWh") is None  # would be inf Wh
    assert normalise(ENERGY, 1.0, "kWh", -400) == 0.0


@pytest.mark.parametrize(
    "timestamp",
    ["2016-12-31T23:59:60Z", "2026-01-01t08:00:00z", "2026-01-01T08:00:00.123456789+14:00"],
)
def test_rfc3339_times_python_does_not_parse_are_accepted(site: FuzzSite, timestamp: str) -> None:
    # RFC 3339 allows a leap second and a lower-case "t" and "z"; the fuzz saw them
    # refused as PropertyConstraintViolation
    frame = _answer(
        site,
        Version.V16,
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": timestamp},
    )
    assert frame[0] == 3, frame


# --- after all of it ------------------------------------------------------------------


def test_the_daemon_survived_the_fuzz(fuzzed: _Fuzzed) -> None:
    site = fuzzed.site
    assert fuzzed.restarts == 0, "an earlier fuzz test broke the daemon (see its failure)"
    assert site.canary is not None
    site.canary.wait_for_more()
    assert site.edge.alive()
    health = site.edge.health()
    assert health is not None
    assert health["status"] == "ok"
    assert site.edge.unreadable_pages() == []
    assert site.edge.log_problems() == []
    site.close()
    assert site.edge.stop() == 0, site.edge.log_tail()
