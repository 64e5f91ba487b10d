"""The compose files' structure: health checks, restart policies, users, volumes, start
conditions, secrets only from env files, and central's databases and routes matching
what central needs. What they start is run in test_compose_*_run.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from central.app import SERVICE_NAMES
from tests.deploy.compose import Compose, ComposeError, read_compose
from tests.deploy.compose_files import (
    CENTRAL_YAML,
    COMPOSE_DIR,
    EDGE_YAML,
    central_compose,
    edge_compose,
    init_script_databases,
)
from tests.deploy.containers import is_evpark_image
from tests.harness.processes import run_evpark

SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|_KEY$", re.IGNORECASE)


def both() -> list[Compose]:
    return [central_compose()[0], edge_compose()[0]]


@pytest.mark.parametrize("compose", both(), ids=["central", "edge"])
def test_every_service_is_checked_restarted_and_stopped_gracefully(compose: Compose) -> None:
    one_shots = compose.completed_before_others()
    for name, service in compose.services.items():
        check = service.get("healthcheck", {})
        if name in one_shots:
            assert service["restart"] == "no", name
            continue
        assert check["test"][0] == "CMD", name
        assert {"interval", "timeout", "retries", "start_period"} <= set(check), name
        assert service["restart"] == "unless-stopped", name
        if is_evpark_image(service):
            assert service["stop_signal"] == "SIGTERM", name
            assert service["stop_grace_period"], name
            assert service["read_only"] is True, name


@pytest.mark.parametrize("compose", both(), ids=["central", "edge"])
def test_services_start_only_on_what_they_need_being_ready(compose: Compose) -> None:
    one_shots = compose.completed_before_others()
    for name, service in compose.services.items():
        for dependency, entry in service.get("depends_on", {}).items():
            wanted = (
                "service_completed_successfully" if dependency in one_shots else "service_healthy"
            )
            assert entry == {"condition": wanted}, f"{name} -> {dependency}"
    compose.start_order()  # no cycle


@pytest.mark.parametrize("path", [CENTRAL_YAML, EDGE_YAML], ids=["central", "edge"])
def test_named_volumes_are_declared_and_secrets_come_from_env_files(path: Path) -> None:
    raw: dict[str, Any] = yaml.safe_load(path.read_text())
    declared = set(raw.get("volumes", {}))
    for name, service in raw["services"].items():
        for mount in service.get("volumes", []):
            source = str(mount).split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"
            else:
                assert str(mount).endswith(":ro"), f"{name}: {mount} should be read-only"
    environments = [service.get("environment", {}) for service in raw["services"].values()]
    environments += [value for key, value in raw.items() if key.startswith("x-")]
    for environment in environments:
        environment = environment.get("environment", environment)
        for key, value in environment.items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", str(value)), f"{key} is written inline"


@pytest.mark.parametrize("example", ["central.env.example", "edge.env.example"])
def test_env_examples_hold_only_placeholders(example: str) -> None:
    lines = (COMPOSE_DIR / example).read_text().splitlines()
    settings = [line.lstrip("# ") for line in lines if "=" in line and " " not in line.lstrip("# ")]
    assert settings
    for line in settings:
        key, _, value = line.partition("=")
        if SECRET_NAME.search(key):
            assert value == "change-me", key


def test_central_refuses_to_start_without_its_env_file() -> None:
    with pytest.raises(ComposeError, match="POSTGRES_PASSWORD"):
        read_compose(CENTRAL_YAML, {})


def test_central_has_a_database_and_a_container_for_every_service() -> None:
    compose, _ = central_compose()
    parts = {"gateway", *SERVICE_NAMES}
    assert set(init_script_databases()) == {f"evpark_{part}" for part in parts}
    url = compose.services["gateway"]["environment"]["EVPARK_CENTRAL_DATABASE_URL"]
    assert url.endswith("/evpark_{service}")
    run = {
        service["command"][service["command"].index("--service") + 1]
        for service in compose.services.values()
        if "--service" in service.get("command", [])
    }
    assert run == parts
    routes = compose.services["gateway"]["environment"]["EVPARK_CENTRAL_SERVICE_URLS"]
    assert set(yaml.safe_load(routes)) == set(SERVICE_NAMES)
    assert compose.completed_before_others() == {"migrate"}
    assert compose.services["migrate"]["command"] == ["central", "migrate"]


def test_the_edge_site_file_passes_config_check_once_its_password_is_set(tmp_path: Path) -> None:
    site = (COMPOSE_DIR / "edge" / "site.toml").read_text()
    as_shipped = run_evpark("config", "check", str(COMPOSE_DIR / "edge" / "site.toml"))
    assert as_shipped.code != 0
    assert "placeholder password" in as_shipped.stdout + as_shipped.stderr
    filled = tmp_path / "site.toml"
    filled.write_text(site.replace('"change-me"', '"a-real-charger-password"'))
    checked = run_evpark("config", "check", str(filled))
    assert checked.code == 0, checked.stdout + checked.stderr


def test_the_broker_wants_logins_except_for_its_own_health_check() -> None:
    compose, _ = edge_compose()
    mosquitto = compose.services["mosquitto"]
    config = (COMPOSE_DIR / "edge" / "mosquitto.conf").read_text()
    listeners = re.split(r"^(?=listener )", config, flags=re.M)[1:]
    settings = {block.split("\n", 1)[0]: block for block in listeners}
    assert "allow_anonymous false" in settings["listener 1883"]
    mounted = {str(m).split(":")[1] for m in mosquitto["volumes"]}
    for line in ("password_file", "acl_file"):
        path = re.search(rf"^{line} (\S+)", settings["listener 1883"], re.M)
        assert path is not None
        assert path[1] in mounted
    (health_listener,) = (name for name in settings if name.endswith(" 127.0.0.1"))
    port = health_listener.split()[1]
    test = mosquitto["healthcheck"]["test"]
    assert test[test.index("-p") + 1] == port
    assert [p.split(":")[-1] for p in mosquitto["ports"]] == ["1883"]  # not the health one
