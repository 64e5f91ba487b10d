"""Awkward chargers against a running daemon, over real websockets: the URL shape
(``ocpp.path_prefix``), no websocket pings (``ocpp.ping_interval = 0``) and a handshake
that offers no subprotocol (``ocpp.default_version``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import websockets
from pydantic import ValidationError
from structlog.testing import capture_logs
from websockets.exceptions import InvalidStatus
from websockets.frames import Opcode

from edge.config import SiteConfig
from edge.daemon import EdgeDaemon
from ocpp_handlers.schemas import Version
from tests.edge.conftest import make_config
from tests.edge.ocpp.test_ws_framing import RawClient
from tests.ocpp_client import RawCharger
from tests.ocpp_flows import flow_for

# what a charger's administrator would type as the central system's URL, id appended
STEVE_PREFIX = "/steve/websocket/CentralSystemService"
# every character the OCPP identity rules allow besides letters and digits (edge.core.ids)
ODD_IDS = ["CP*1", "cp-1_a", "A=B+C", "pipe|at@dot.1", "CP%2B1"]


def served_at(daemon: EdgeDaemon, prefix: str) -> str:
    return f"ws://127.0.0.1:{daemon.ocpp_port}{prefix}"


async def boots(url: str, charger_id: str, version: Version) -> None:
    async with RawCharger(url, charger_id, version) as charger:
        assert (await flow_for(charger).boot())["status"] == "Accepted"


async def refused(url: str, **options: Any) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as refusal:
        async with websockets.connect(url, open_timeout=10, **options):
            pass
    return refusal.value


# --- ocpp.path_prefix ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "prefix"),
    [("/ocpp", "/ocpp"), ("/ocpp/", "/ocpp"), ("", ""), ("/", ""), (STEVE_PREFIX, STEVE_PREFIX)],
)
def test_path_prefix_is_read_without_its_trailing_slash(
    tmp_path: Path, configured: str, prefix: str
) -> None:
    assert make_config(tmp_path, ocpp={"path_prefix": configured}).ocpp.path_prefix == prefix


@pytest.mark.parametrize("configured", ["ocpp", "/a b", "//ocpp", "/ocpp%2Fx", "/ocpp?x=1"])
def test_path_prefix_is_plain_segments(tmp_path: Path, configured: str) -> None:
    with pytest.raises(ValidationError, match=r"ocpp\.path_prefix"):
        make_config(tmp_path, ocpp={"path_prefix": configured})


@pytest.mark.parametrize("charger_id", ODD_IDS)
async def test_an_empty_prefix_takes_the_id_as_the_whole_path(
    config_factory: Callable[..., SiteConfig], version: Version, charger_id: str
) -> None:
    async with EdgeDaemon(config_factory(ocpp={"path_prefix": ""})) as daemon:
        await boots(served_at(daemon, ""), charger_id, version)
        await boots(served_at(daemon, ""), f"{charger_id}/", version)  # a trailing slash
        expected = charger_id.replace("%2B", "+")  # decoded once
        assert list(daemon.site.chargers) == [expected]
        assert daemon.site.chargers[expected].version == version.value


async def test_a_long_prefix_is_served_and_paths_outside_it_are_refused(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = config_factory(ocpp={"path_prefix": f"{STEVE_PREFIX}/"})
    with capture_logs() as logs:
        async with EdgeDaemon(config) as daemon:
            await boots(served_at(daemon, STEVE_PREFIX), "CP-STEVE", Version.V16)
            outside = [
                "/ocpp/CP-STEVE",  # the default prefix is not served any more
                f"{STEVE_PREFIX}/extra/CP-STEVE",  # the id is the one segment after it
                f"{STEVE_PREFIX}X/CP-STEVE",
                f"{STEVE_PREFIX}/",
            ]
            for path in outside:
                answer = await refused(served_at(daemon, path), subprotocols=["ocpp1.6"])
                assert answer.response.status_code == 404
                assert answer.response.body == f"use {STEVE_PREFIX}/<charge point id>\n".encode()
            assert list(daemon.site.chargers) == ["CP-STEVE"]
    bad_paths = [e for e in logs if e["event"] == "ocpp.connect.bad_path"]
    assert [e["path"] for e in bad_paths] == outside
    assert {e["expected"] for e in bad_paths} == {f"{STEVE_PREFIX}/<charge point id>"}


async def test_under_an_empty_prefix_a_longer_path_is_refused(
    config_factory: Callable[..., SiteConfig],
) -> None:
    async with EdgeDaemon(config_factory(ocpp={"path_prefix": ""})) as daemon:
        for path in ["/ocpp/CP-1", "/"]:
            answer = await refused(served_at(daemon, path), subprotocols=["ocpp1.6"])
            assert answer.response.status_code == 404
            assert answer.response.body == b"use /<charge point id>\n"
        # ids outside the identity rules are refused under any prefix
        answer = await refused(served_at(daemon, "/CP%201"), subprotocols=["ocpp1.6"])
        assert answer.response.status_code == 400
        assert daemon.site.chargers == {}


# --- ocpp.ping_interval ----------------------------------------------------------------


async def _first_frame_within(daemon: EdgeDaemon, seconds: float) -> Opcode | None:
    """Connect without ever answering a ping; the first frame the daemon sends unasked."""
    reader, writer = await asyncio.open_connection("127.0.0.1", daemon.ocpp_port)
    try:
        raw = RawClient(reader, writer)
        await raw.handshake()
        try:
            async with asyncio.timeout(seconds):
                return (await raw.next_frame()).opcode
        except TimeoutError:
            return None
    finally:
        writer.close()


async def test_pings_are_sent_every_ping_interval(
    config_factory: Callable[..., SiteConfig],
) -> None:
    async with EdgeDaemon(config_factory(ocpp={"ping_interval": 0.2})) as daemon:
        assert await _first_frame_within(daemon, 5) is Opcode.PING


async def test_ping_interval_0_sends_no_pings(config_factory: Callable[..., SiteConfig]) -> None:
    async with EdgeDaemon(config_factory(ocpp={"ping_interval": 0})) as daemon:
        assert await _first_frame_within(daemon, 1.5) is None
        await boots(served_at(daemon, "/ocpp"), "CP-NO-PING", Version.V16)


def test_ping_interval_is_not_negative(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"ocpp\.ping_interval"):
        make_config(tmp_path, ocpp={"ping_interval": -1})


# --- ocpp.default_version --------------------------------------------------------------


class ChargerWithoutSubprotocol(RawCharger):
    """A charger whose handshake offers no subprotocol, yet speaks ``version``."""

    async def __aenter__(self) -> ChargerWithoutSubprotocol:
        self._ws = await websockets.connect(self.url, open_timeout=10)
        self._reader = asyncio.create_task(self._read())
        return self


async def test_without_default_version_no_subprotocol_is_refused(edge: EdgeDaemon) -> None:
    with capture_logs() as logs:
        answer = await refused(f"{served_at(edge, '/ocpp')}/CP-MUTE")
    assert answer.response.status_code == 400
    assert answer.response.body == b"offer subprotocol ocpp2.0.1 or ocpp1.6\n"
    assert [e["charger"] for e in logs if e["event"] == "ocpp.connect.no_subprotocol"] == [
        "CP-MUTE"
    ]
    assert edge.site.chargers == {}


async def test_default_version_serves_a_charger_that_offers_no_subprotocol(
    config_factory: Callable[..., SiteConfig], version: Version
) -> None:
    default = version.value.removeprefix("ocpp")
    async with EdgeDaemon(config_factory(ocpp={"default_version": default})) as daemon:
        url = served_at(daemon, "/ocpp")
        async with ChargerWithoutSubprotocol(url, "CP-MUTE", version) as charger:
            # answered without a subprotocol header, as such chargers expect
            assert charger.ws.subprotocol is None
            assert charger.ws.response is not None
            assert "Sec-WebSocket-Protocol" not in charger.ws.response.headers
            flow = flow_for(charger)  # every answer is checked against the version's schema
            assert (await flow.boot())["status"] == "Accepted"
            assert await flow.authorize("TAG-OK") == "Accepted"
        assert daemon.site.chargers["CP-MUTE"].version == version.value


async def test_default_version_leaves_offered_subprotocols_alone(
    config_factory: Callable[..., SiteConfig],
) -> None:
    async with EdgeDaemon(config_factory(ocpp={"default_version": "1.6"})) as daemon:
        url = f"{served_at(daemon, '/ocpp')}/CP-OFFERS"
        async with websockets.connect(url, subprotocols=["ocpp2.0.1"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "ocpp2.0.1"
        # a version the edge does not speak is still refused, not served as the default
        answer = await refused(url, subprotocols=["ocpp1.5"])
        assert answer.response.status_code == 400


def test_default_version_is_one_the_edge_speaks(tmp_path: Path) -> None:
    assert make_config(tmp_path).ocpp.default_version is None
    with pytest.raises(ValidationError, match=r"ocpp\.default_version"):
        make_config(tmp_path, ocpp={"default_version": "1.5"})
