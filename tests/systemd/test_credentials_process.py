"""The edge as systemd runs it with LoadCredential=: its site key only in a file in
``$CREDENTIALS_DIRECTORY``, and it authenticates to a central this test starts;
`evpark config check` (the unit's ExecStartPre) reads the same directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness.ports import free_port
from tests.harness.processes import (
    DaemonProcess,
    central_run_command,
    create_site_key,
    edge_run_command,
    run_evpark,
    stop_all,
)
from tests.harness.site_config import write_site_toml


@pytest.fixture
def central(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port, data = free_port(), tmp_path / "central"
    process = DaemonProcess(
        "central", central_run_command(port), tmp_path / "central.log",
        {"EVPARK_CENTRAL_DATA_DIR": str(data)},
    )  # fmt: skip
    process.start()
    try:
        process.wait_healthy(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}", data
    finally:
        process.stop(within=20)


def _site(tmp_path: Path, central_url: str, http_port: int) -> Path:
    return write_site_toml(
        tmp_path / "site.toml",
        {
            "site": {"id": "credentials-site", "environment": "development"},
            "ocpp": {"host": "127.0.0.1", "port": free_port()},
            "http": {"host": "127.0.0.1", "port": http_port},
            "central": {"url": central_url, "batch_interval": 0.3},
            "mqtt": {"url": f"mqtt://127.0.0.1:{free_port()}"},  # no broker: not needed here
        },
    )


def _credentials(tmp_path: Path, site_key: str) -> Path:
    directory = tmp_path / "credentials"  # what systemd makes of the unit's LoadCredential=
    directory.mkdir(mode=0o700)
    (directory / "central__site_key").write_text(site_key + "\n")
    (directory / "mqtt__password").write_text("\n")  # SetCredential=mqtt__password:\n
    return directory


def test_the_edge_authenticates_with_the_site_key_from_its_credentials(
    tmp_path: Path, central: tuple[str, Path]
) -> None:
    central_url, central_data = central
    key = create_site_key("credentials-site", data_dir=central_data)
    http_port = free_port()
    config = _site(tmp_path, central_url, http_port)
    credentials = {"CREDENTIALS_DIRECTORY": str(_credentials(tmp_path, key))}

    refused = run_evpark("config", "check", str(config))  # no key in the environment either
    assert refused.code == 1
    assert "central.url needs central.site_key" in refused.stderr
    checked = run_evpark("config", "check", str(config), env=credentials)
    assert checked.code == 0, checked.stderr

    edge = DaemonProcess(
        "edge", edge_run_command(config, tmp_path / "edge"), tmp_path / "edge.log",
        credentials,
    )  # fmt: skip
    edge.start()
    try:
        health = f"http://127.0.0.1:{http_port}/healthz"
        edge.wait_healthy(health)
        # online: central answered the site's status request with 200, i.e. took the key
        edge.wait_until(
            lambda: httpx.get(health, timeout=2).json()["sync"]["online"] is True,
            "central accepts the site key from the credential",
            within=30,
        )
    finally:
        assert stop_all([edge], within=20) == [0]
