"""Schemathesis against central's OpenAPI (the all-in-one process, a real uvicorn): no
input, however odd, gets a 5xx. Run with an operator key (every service's routes) and a
site key (the sync routes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness.ports import free_port

EVPARK = [sys.executable, "-m", "evpark"]
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


def _key(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [*EVPARK, "central", "keys", "create", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


@pytest.fixture(scope="module")
def all_in_one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    tmp_path = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    env = {
        **os.environ,
        "EVPARK_CENTRAL_DATA_DIR": str(tmp_path / "data"),
        "EVPARK_CENTRAL_RATE_LIMIT__ENABLED": "false",
        # long polls answer within a second, so the run stays short
        "EVPARK_CENTRAL_MAX_COMMAND_WAIT_S": "1",
        "EVPARK_LOG_FORMAT": "json",
    }
    keys = {
        "operator": _key(env, "--scope", "operator"),
        "site": _key(env, "--scope", "site", "--site", "fuzz-site"),
    }
    log = tmp_path / "central.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [*EVPARK, "central", "run", "--port", str(port)],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log.read_text()[-3000:]
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "central did not start"
                time.sleep(0.1)
            yield url, keys
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


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
