"""Provisioning's configuration (docs/provisioning.md): the site's defaults and each
charger's own, merged key by key; mistakes reported by `evpark config check` with the
key they are in; environment overrides like every key."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import ConfigError, load_site_config
from edge.core.provisioning import ChargerSetup, VariableKey, parse_variable_key
from tests.harness.processes import run_evpark

SITE = """
[site]
id = "prov-site"
environment = "development"

[ocpp]
boot = "pending"
validation = "tolerant"

[ocpp.config]
HeartbeatInterval = "600"
ConnectionTimeOut = "60"

[ocpp.variables]
"OCPPCommCtrlr.HeartbeatInterval" = "600"

[[chargers]]
id = "CP-1"
validation = "strict"

[chargers.config]
ConnectionTimeOut = "90"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


def test_a_chargers_settings_override_the_sites_key_by_key(tmp_path: Path) -> None:
    config = load_site_config(write(tmp_path, SITE))
    assert config.charger_setup("cp-1") == ChargerSetup(
        boot="pending",
        validation="strict",
        config={"HeartbeatInterval": "600", "ConnectionTimeOut": "90"},
        variables={"OCPPCommCtrlr.HeartbeatInterval": "600"},
    )
    # a charger not in the file (auto-registered, approved) gets the site's
    unlisted = config.charger_setup("CP-APPROVED")
    assert unlisted.validation == "tolerant"
    assert unlisted.config == {"HeartbeatInterval": "600", "ConnectionTimeOut": "60"}


def test_the_environment_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, SITE)
    monkeypatch.setenv("EVPARK_OCPP__BOOT", "accept")
    monkeypatch.setenv("EVPARK_OCPP__CONFIG", '{"MeterValueSampleInterval": "30"}')
    config = load_site_config(path)
    assert config.charger_setup("CP-2").boot == "accept"
    # a table from the environment adds to (or changes) the file's keys
    assert config.charger_setup("CP-2").config == {
        "HeartbeatInterval": "600",
        "ConnectionTimeOut": "60",
        "MeterValueSampleInterval": "30",
    }


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ('[ocpp]\nboot = "later"\n', "ocpp.boot", "'accept' or 'pending'"),
        ('[[chargers]]\nid = "CP-1"\nvalidation = "lax"\n', "chargers.0.validation", "strict"),
        ('[ocpp.variables]\n"HeartbeatInterval" = "5"\n', "ocpp.variables",
         "variable 'HeartbeatInterval' is not Component.Variable"),
        ('[[chargers]]\nid = "CP-1"\n[chargers.variables]\n"EVSE[x].Enabled" = "true"\n',
         "chargers.0.variables", "variable 'EVSE[x].Enabled'"),
        ('[ocpp.config]\n"Has Space" = "1"\n', "ocpp.config",
         "configuration key 'Has Space' must be"),
    ],
)  # fmt: skip
def test_a_mistake_names_its_key(tmp_path: Path, text: str, field: str, message: str) -> None:
    path = write(tmp_path, '[site]\nid = "s"\nenvironment = "development"\n' + text)
    with pytest.raises(ConfigError) as err:
        load_site_config(path)
    assert any(f == field and message in m for f, m in err.value.problems), err.value.problems


def test_config_check_reports_a_bad_variable(tmp_path: Path) -> None:
    path = write(tmp_path, SITE + '\n[chargers.variables]\n"Bad" = "1"\n')
    result = run_evpark("config", "check", str(path))
    assert result.code == 1
    assert "chargers.0.variables: variable 'Bad' is not Component.Variable" in result.stderr


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("OCPPCommCtrlr.HeartbeatInterval", VariableKey("OCPPCommCtrlr", "HeartbeatInterval")),
        ("EVSE[2].AvailabilityState", VariableKey("EVSE", "AvailabilityState", 2)),
        ("Connector[1].Enabled[Main]", VariableKey("Connector", "Enabled", 1, "Main")),
    ],
)
def test_variable_keys_read_back_as_written(text: str, key: VariableKey) -> None:
    assert parse_variable_key(text) == key
    assert str(key) == text
