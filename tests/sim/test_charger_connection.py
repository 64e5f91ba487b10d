"""The simulated chargers' connection: reconnecting after a drop, TLS with a client
certificate (security profile 3), and `evpark sim chargers` running a fleet."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from websockets.asyncio.server import serve
from websockets.typing import Subprotocol

from sim.charger import SimCharger
from tests.sim.csms import VERSIONS, WAIT, MiniCsms, config


@pytest.mark.parametrize("version", VERSIONS)
async def test_reconnects_with_backoff_after_the_server_drops_it(
    csms: MiniCsms, version: str
) -> None:
    async with SimCharger(config(csms, version)) as charger:
        async with asyncio.timeout(WAIT):
            await charger.wait_online()
        await csms.connections[charger.id].close()
        async with asyncio.timeout(WAIT):
            await charger.wait_offline()
            await charger.wait_online()
        assert charger.connection_count == 2
        assert charger.boot_count == 2


async def test_cli_runs_a_mixed_fleet_and_stops_gracefully(csms: MiniCsms) -> None:
    evpark = Path(sys.executable).parent / "evpark"
    process = await asyncio.create_subprocess_exec(
        str(evpark),
        "sim",
        "chargers",
        "--url",
        csms.url,
        "--count",
        "2",
        "--version",
        "mixed",
        "--speed",
        "3000",
        "--meter-interval",
        "0.2",
        "--duration",
        "3",
        "--seed",
        "4",
        "--log-format",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    async with asyncio.timeout(30):
        _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert {"SIM-16-001", "SIM-201-001"} <= {c.charger for c in csms.calls}
    logs = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    assert any(
        line["event"] == "sim.charger.booted" and line["charger"] == "SIM-16-001" for line in logs
    )
    # Every session started was ended before exit.
    starts = len(csms.of("SIM-16-001", "StartTransaction"))
    assert len(csms.of("SIM-16-001", "StopTransaction")) == starts
    events = [c.payload["eventType"] for c in csms.of("SIM-201-001", "TransactionEvent")]
    assert events.count("Started") == events.count("Ended")


def _issue_certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    start = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evpark test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start.replace(year=start.year + 1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": directory / "ca.pem"}
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    for role, name, usage in [
        ("server", "127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", "SIM-16-001", ExtendedKeyUsageOID.CLIENT_AUTH),
    ]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start.replace(year=start.year + 1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if role == "server":
            import ipaddress

            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(name))]),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        paths[role] = directory / f"{role}.pem"
        paths[f"{role}_key"] = directory / f"{role}.key"
        paths[role].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths[f"{role}_key"].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return paths


async def test_security_profile_3_mutual_tls_with_basic_auth(tmp_path: Path) -> None:
    import ssl

    certs = _issue_certificates(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs["ca"]))
    server_tls.load_cert_chain(certs["server"], certs["server_key"])
    server_tls.verify_mode = ssl.CERT_REQUIRED
    mini = MiniCsms()
    async with serve(
        mini.handler, "127.0.0.1", 0, subprotocols=[Subprotocol("ocpp1.6")], ssl=server_tls
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        mini.url = f"wss://127.0.0.1:{port}/ocpp"
        tls = config(
            mini,
            "1.6",
            ca_file=str(certs["ca"]),
            cert_file=str(certs["client"]),
            key_file=str(certs["client_key"]),
        )
        async with SimCharger(tls) as charger:
            async with asyncio.timeout(WAIT):
                await charger.wait_online()
            assert mini.auth_headers[charger.id].startswith("Basic ")
    assert mini.violations == []
