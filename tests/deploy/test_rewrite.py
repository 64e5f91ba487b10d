"""The translation of a container's view to this machine's (tests.deploy.rewrite), on
the forms the deployment files use."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.containers import ContainerSpec, HealthCheck
from tests.deploy.rewrite import LocalView, PostgresTarget

ADDRESSES = {("parking", 3001): 41001, ("gateway", 8000): 48000, ("nats", 4222): 4222}
ROOT = Path("/tmp/run/gateway")


def view_of(spec: ContainerSpec) -> LocalView:
    postgres = PostgresTarget("postgres", 5432, "postgres", "t1_")
    return LocalView(spec, ADDRESSES, ROOT, postgres)


GATEWAY = view_of(
    ContainerSpec(
        "gateway",
        ("central", "run"),
        files={"/etc/evpark/central.toml": "", "/run/secrets/internal_token": ""},
        volumes=("/var/lib/evpark",),
        ports=(8000,),
    )
)


@pytest.mark.parametrize(
    ("written", "local"),
    [
        ('{"parking": "http://parking:3001"}', '{"parking": "http://127.0.0.1:41001"}'),
        ("nats://nats:4222", "nats://127.0.0.1:4222"),
        ("http://localhost:8000/healthz", "http://127.0.0.1:48000/healthz"),
        ("http://127.0.0.1:8000/healthz", "http://127.0.0.1:48000/healthz"),
        ("http://gateway:8000/", "http://127.0.0.1:48000/"),
        # not the deployment's: left alone
        ("http://parking:9999", "http://parking:9999"),
        ("http://example.com:3001", "http://example.com:3001"),
        ("http://myparking:3001", "http://myparking:3001"),
        ("http://localhost:3001", "http://localhost:3001"),  # parking's port, not its own
        # its own listen ports
        ("port = 8000", "port = 48000"),
        ("--port=8000", "--port=48000"),
        ("listener 8000", "listener 48000"),
        ("port = 3001", "port = 3001"),
        # PostgreSQL: the local server, its user, the run's databases
        (
            "postgresql+asyncpg://evpark@postgres:5432/evpark_{service}",
            "postgresql+asyncpg://postgres@127.0.0.1:5432/t1_evpark_{service}",
        ),
        (
            "postgresql://evpark:pw@postgres/evpark_sync",
            "postgresql://postgres@127.0.0.1:5432/t1_evpark_sync",
        ),
        # container paths under the container's own directory
        ("/etc/evpark/central.toml", f"{ROOT}/etc/evpark/central.toml"),
        ("/run/secrets/internal_token", f"{ROOT}/run/secrets/internal_token"),
        (
            "sqlite+aiosqlite:////var/lib/evpark/x.db",
            f"sqlite+aiosqlite:///{ROOT}/var/lib/evpark/x.db",
        ),
        ("/var/lib/evparkish", "/var/lib/evparkish"),
        ("/usr/var/lib/evpark", "/usr/var/lib/evpark"),
    ],
)
def test_a_string_as_the_container_writes_it_and_as_it_runs_here(written: str, local: str) -> None:
    assert GATEWAY.text(written) == local


def test_argv_and_env_give_listen_ports_in_their_own_forms() -> None:
    argv = GATEWAY.argv(
        ["evpark", "central", "run", "--port", "8000", "--data-dir", "/var/lib/evpark"]
    )
    assert argv == [
        "evpark",
        "central",
        "run",
        "--port",
        "48000",
        "--data-dir",
        f"{ROOT}/var/lib/evpark",
    ]
    assert GATEWAY.argv(["mosquitto_sub", "-p", "8000", "-C", "1"]) == [
        "mosquitto_sub", "-p", "48000", "-C", "1",
    ]  # fmt: skip
    assert GATEWAY.argv(["x", "-p", "3001"]) == ["x", "-p", "3001"]  # not its own
    env = GATEWAY.env({"EVPARK_CENTRAL_PORT": "8000", "OTHER_PORT": "3001", "COUNT": "8000"})
    assert env == {"EVPARK_CENTRAL_PORT": "48000", "OTHER_PORT": "3001", "COUNT": "8000"}


def test_a_health_check_is_a_command_or_a_url() -> None:
    with pytest.raises(ValueError, match="not both or neither"):
        HealthCheck()
    with pytest.raises(ValueError, match="not both or neither"):
        HealthCheck(command=("true",), url="http://localhost:1/")
