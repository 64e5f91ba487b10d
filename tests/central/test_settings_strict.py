"""Central's settings fail safe: an unknown key (file, environment, nested), a missing or
broken config file, a database URL of another driver are errors naming the key, all of
them in one run, one line each and no traceback; secret files fill settings; ``evpark
central config check`` says what ``central run`` would use, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.settings import load_settings
from central.settings_sources import CentralConfigError
from tests.harness.processes import run_evpark

CLEAN = {"EVPARK_CENTRAL_CONFIG": ""}  # the tests' own environment names no file


def _problems(**kwargs: object) -> list[tuple[str, str]]:
    with pytest.raises(CentralConfigError) as raised:
        load_settings(**kwargs)  # type: ignore[arg-type]
    return raised.value.problems


def test_every_unknown_key_is_named_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "central.toml"
    config.write_text(
        'database_urll = "x"\n[rate_limit]\nbrst = 3\n[notification.smtp]\nhots = "m"\n'
    )
    monkeypatch.setenv("EVPARK_CENTRAL_DATABASE_URLL", "postgresql+asyncpg://db/x")
    monkeypatch.setenv("EVPARK_CENTRAL_RATE_LIMIT__DRIVR_PER_MINUTE", "3")
    monkeypatch.setenv("EVPARK_CENTRAL_BUS_URL", "nats://")  # no host
    monkeypatch.setenv("EVPARK_CENTRAL__SITE_KEY", "the edge's, not ours")
    found = dict(_problems(config=config, data_dir=tmp_path))
    assert found == {
        "EVPARK_CENTRAL_DATABASE_URLL": "unknown setting (environment variable)",
        "database_urll": "unknown setting",
        "rate_limit.brst": "unknown setting",
        "rate_limit.drivr_per_minute": "unknown setting",
        "notification.smtp.hots": "unknown setting",
        "bus_url": "bus_url must be memory:// or nats://host:port",
    }


def test_a_missing_or_broken_config_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    assert _problems(config=missing) == [
        (str(missing), "no such file (named by EVPARK_CENTRAL_CONFIG or --config)")
    ]
    broken = tmp_path / "broken.toml"
    broken.write_text("port = \n")
    [(key, message)] = _problems(config=broken)
    assert key == str(broken)
    assert message.startswith("not valid TOML")


@pytest.mark.parametrize(
    ("setting", "value", "key"),
    [
        ("database_url", "postgres://db/x", "database_url"),
        ("database_urls", {"parking": "mysql://db/x"}, "database_urls"),
        ("cache_url", "redis://cache:6379/zero", "cache_url"),
        ("cache_url", "redis://cache:99999/0", "cache_url"),
        ("service_urls", {"parking": "parking:3001"}, "service_urls"),
        ("bus_stream_replicas", 6, "bus_stream_replicas"),
        ("bus_stream_max_age_days", 0, "bus_stream_max_age_days"),
    ],
)
def test_addresses_and_stream_settings_are_checked_offline(
    tmp_path: Path, setting: str, value: object, key: str
) -> None:
    keys = [k for k, _ in _problems(data_dir=tmp_path, **{setting: value})]
    assert keys == [key]


def test_secret_files_fill_settings_below_the_environment_above_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "internal_token").write_text("from-the-file\n")
    (secrets / "database_url").write_text("postgresql+asyncpg://evpark:pw@db/evpark_{service}")
    (secrets / "notification__smtp__password").write_text("smtp-secret")
    (secrets / "cache_url").write_text("redis://from-the-file:6379/0")
    (secrets / "postgres_password").write_text("another program's secret: ignored")
    config = tmp_path / "central.toml"
    config.write_text('internal_token = "from-toml"\ncache_url = "redis://from-toml:6379/0"\n')
    monkeypatch.setenv("EVPARK_CENTRAL_CACHE_URL", "redis://from-env:6379/0")
    settings = load_settings(config, secrets_dirs=[secrets])
    assert settings.internal_token == "from-the-file"  # the file wins over TOML
    assert settings.cache_url == "redis://from-env:6379/0"  # the environment over the file
    assert (
        settings.database_url_for("parking") == "postgresql+asyncpg://evpark:pw@db/evpark_parking"
    )
    assert settings.notification.smtp.password.get_secret_value() == "smtp-secret"
    # the options of the command line win over everything
    assert (
        load_settings(config, secrets_dirs=[secrets], internal_token="cli").internal_token == "cli"
    )


def test_credentials_directory_of_systemd_is_read_and_checked(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "database_url").write_text(
        "postgresql+asyncpg://evpark:s3cret@db/evpark_{service}"
    )
    ran = run_evpark(
        "central", "config", "check",
        env={**CLEAN, "CREDENTIALS_DIRECTORY": str(credentials),
             "EVPARK_CENTRAL_DATA_DIR": str(tmp_path / "data")},
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    assert "database parking: postgresql+asyncpg://evpark:***@db/evpark_parking" in ran.stdout
    assert "s3cret" not in ran.stdout
    assert "listen: 127.0.0.1:8000" in ran.stdout


def test_config_check_prints_every_problem_and_exits_1(tmp_path: Path) -> None:
    config = tmp_path / "central.toml"
    config.write_text('database_urll = "x"\nport = "eighty"\n')
    ran = run_evpark(
        "central", "config", "check", "--config", str(config),
        env={**CLEAN, "EVPARK_CENTRAL_CACHE_URLL": "redis://c:6379/0"},
    )  # fmt: skip
    assert ran.code == 1
    lines = ran.stderr.strip().splitlines()
    assert sorted(lines) == [
        "central settings: EVPARK_CENTRAL_CACHE_URLL: unknown setting (environment variable)",
        "central settings: database_urll: unknown setting",
        "central settings: port: Input should be a valid integer, unable to parse string as an integer",
    ]


def test_central_run_refuses_a_typo_without_a_traceback(tmp_path: Path) -> None:
    ran = run_evpark(
        "central", "run", "--port", "0",
        env={**CLEAN, "EVPARK_CENTRAL_DATABASE_URLL": "postgresql+asyncpg://db/x",
             "EVPARK_CENTRAL_DATA_DIR": str(tmp_path / "data")},
    )  # fmt: skip
    assert ran.code == 2
    assert ran.stderr.strip() == (
        "central settings: EVPARK_CENTRAL_DATABASE_URLL: unknown setting (environment variable)"
    )
    assert not (tmp_path / "data").exists()  # nothing started on the defaults


def test_central_run_names_a_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "central.toml"
    ran = run_evpark("central", "run", env={"EVPARK_CENTRAL_CONFIG": str(missing)})
    assert ran.code == 2
    assert str(missing) in ran.stderr
    assert "Traceback" not in ran.stderr
