"""Schemathesis against central's OpenAPI (the all-in-one process, a real uvicorn): no
input, however odd, gets a 5xx. Run with an operator key (every service's routes) and a
site key (the sync routes)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.ports import free_port
from tests.harness.processes import DaemonProcess, central_run_command, create_key

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


@pytest.fixture(scope="module")
def all_in_one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    tmp_path = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    env = {
        "EVPARK_CENTRAL_DATA_DIR": str(tmp_path / "data"),
        "EVPARK_CENTRAL_RATE_LIMIT__ENABLED": "false",
        # long polls answer within a second, so the run stays short
        "EVPARK_CENTRAL_MAX_COMMAND_WAIT_S": "1",
    }
    keys = {
        "operator": create_key("operator", env=env),
        "site": create_key("site", "fuzz-site", env=env),
    }
    central = DaemonProcess("central", central_run_command(port), tmp_path / "central.log", env)
    url = f"http://127.0.0.1:{port}"
    try:
        central.start()
        central.wait_healthy(f"{url}/healthz", within=60)
        yield url, keys
    finally:
        central.stop(within=15)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scope", "paths"),
    [
        ("operator", "^/(parking|charging)/"),
        ("site", "^/sync/"),
        ("operator", "^/(notifications|analytics|metrics)/"),
    ],
)
def test_no_server_errors(
    all_in_one: tuple[str, dict[str, str]], scope: str, paths: str, tmp_path: Path
) -> None:
    url, keys = all_in_one
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {keys[scope]}",
            "--include-path-regex",
            paths,
            "--max-examples",
            "20",
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "1",
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--max-time",
            "25",
        ],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
