"""Central's settings: sources and their order, database URLs per service, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from central.settings import CentralSettings, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "central.example.toml"


def test_toml_file_then_environment_then_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVPARK_CENTRAL_CONFIG", str(EXAMPLE))
    assert load_settings().rate_limit.burst == 60
    monkeypatch.setenv("EVPARK_CENTRAL_RATE_LIMIT__BURST", "7")
    monkeypatch.setenv("EVPARK_CENTRAL_PORT", "9100")
    settings = load_settings(data_dir=tmp_path, host=None)
    assert settings.rate_limit.burst == 7
    assert settings.port == 9100
    assert settings.data_dir == tmp_path
    assert settings.host == "127.0.0.1"


def test_database_url_per_service(tmp_path: Path) -> None:
    default = CentralSettings(data_dir=tmp_path)
    assert default.database_url_for("parking") == (
        f"sqlite+aiosqlite:///{tmp_path.resolve()}/parking.db"
    )
    pg = CentralSettings(
        database_url="postgresql+asyncpg://u@db/evpark_{service}",
        database_urls={"analytics": "postgresql+asyncpg://u@warehouse/a"},
    )
    assert pg.database_url_for("charging") == "postgresql+asyncpg://u@db/evpark_charging"
    assert pg.database_url_for("analytics") == "postgresql+asyncpg://u@warehouse/a"


def test_bad_urls_and_placeholder_secrets_are_refused() -> None:
    with pytest.raises(ValidationError, match="bus_url"):
        CentralSettings(bus_url="kafka://x")
    with pytest.raises(ValidationError, match="cache_url"):
        CentralSettings(cache_url="memcached://x")
    with pytest.raises(ValidationError, match="internal_token"):
        CentralSettings(environment="production", internal_token="change-me")
    assert CentralSettings(environment="production", internal_token="a-real-one").internal_token
