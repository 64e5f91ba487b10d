"""Security profiles 2 (TLS + Basic) and 3 (mutual TLS) with certificates made by the test."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme
import websockets
from websockets.exceptions import InvalidMessage, InvalidStatus

from edge.config import SiteConfig
from edge.daemon import EdgeDaemon
from tests.edge.conftest import PASSWORD


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def _server_files(ca: trustme.CA, tmp_path: Path) -> tuple[Path, Path, Path]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = (
        tmp_path / "server.pem",
        tmp_path / "server.key",
        tmp_path / "ca.pem",
    )
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    return cert_file, key_file, ca_file


def _basic(charger_id: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{charger_id}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def _boot(ws: websockets.ClientConnection) -> str:
    await ws.send('[2,"1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]')
    return str(await ws.recv())


async def test_profile_2_tls_with_basic_auth(
    config_factory: Callable[..., SiteConfig], ca: trustme.CA, tmp_path: Path
) -> None:
    cert_file, key_file, _ = _server_files(ca, tmp_path)
    config = config_factory(ocpp={"tls": {"cert_file": cert_file, "key_file": key_file}})
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    async with EdgeDaemon(config) as daemon:
        url = f"wss://127.0.0.1:{daemon.ocpp_port}/ocpp/CP-LOCKED"
        async with websockets.connect(
            url, ssl=client_tls, subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            additional_headers=_basic("CP-LOCKED", PASSWORD),
        ) as ws:  # fmt: skip
            assert '"Accepted"' in await _boot(ws)
        with pytest.raises(InvalidStatus):
            await websockets.connect(
                url, ssl=client_tls, subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                additional_headers=_basic("CP-LOCKED", "not-the-password"),
            )  # fmt: skip
        with pytest.raises(ssl.SSLCertVerificationError):  # a client that does not trust us
            await websockets.connect(
                url, ssl=ssl.create_default_context(), subprotocols=["ocpp1.6"]
            )  # type: ignore[list-item]


async def test_profile_3_client_certificate_must_name_the_charger(
    config_factory: Callable[..., SiteConfig], ca: trustme.CA, tmp_path: Path
) -> None:
    cert_file, key_file, ca_file = _server_files(ca, tmp_path)
    config = config_factory(
        ocpp={"tls": {"cert_file": cert_file, "key_file": key_file, "client_ca_file": ca_file}}
    )

    def client_context(name: str) -> ssl.SSLContext:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        ca.issue_cert(name, common_name=name).configure_cert(context)
        return context

    async with EdgeDaemon(config) as daemon:
        url = f"wss://127.0.0.1:{daemon.ocpp_port}/ocpp/CP-MTLS"
        async with websockets.connect(
            url,
            ssl=client_context("CP-MTLS"),
            subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
        ) as ws:
            await ws.send(
                '[2,"1","BootNotification",{"chargingStation":{"vendorName":"V","model":"M"},"reason":"PowerUp"}]'
            )
            assert '"Accepted"' in str(await ws.recv())
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(
                url,
                ssl=client_context("CP-SOMEONE-ELSE"),
                subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
            )
        assert refused.value.response.status_code == 403
        no_cert = ssl.create_default_context()
        ca.configure_trust(no_cert)
        with pytest.raises((ssl.SSLError, ConnectionError, InvalidMessage)):
            async with websockets.connect(url, ssl=no_cert, subprotocols=["ocpp2.0.1"]) as ws:  # type: ignore[list-item]
                await ws.recv()
