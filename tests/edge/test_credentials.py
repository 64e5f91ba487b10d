"""The edge's secrets from systemd credentials: files in ``$CREDENTIALS_DIRECTORY`` named
after the setting; environment > credential > TOML file; a blank file sets nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import ConfigError, load_site_config
from edge.credentials import Credentials, credential_names
from tests.harness.site_config import write_site_toml

SITE = {
    "site": {"id": "s1", "environment": "production"},
    "central": {"url": "http://central.invalid", "site_key": "from-the-file"},
    "mqtt": {"username": "edge", "password": "file-password"},
    "chargers": [{"id": "CP-1", "password": "file-password-1"}, {"id": "CP-2", "password": "p2p2p2p2"}],
}  # fmt: skip


@pytest.fixture
def site_file(tmp_path: Path) -> Path:
    return write_site_toml(tmp_path / "site.toml", SITE)


def _credentials(tmp_path: Path, files: dict[str, str]) -> Credentials:
    directory = tmp_path / "credentials"
    directory.mkdir()
    for name, content in files.items():
        (directory / name).write_text(content)
    return Credentials.read(directory)


def test_a_credential_takes_the_place_of_the_files_setting(
    tmp_path: Path, site_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVPARK_CENTRAL__SITE_KEY", raising=False)
    found = _credentials(
        tmp_path,
        {
            "central__site_key": "from-credential\n",  # as `echo` writes it
            "mqtt__password": "mqtt-secret",
            "chargers__cp-1__password": "credential-1",  # charger ids ignore case
        },
    )
    config = load_site_config(site_file, found)
    assert config.central.site_key == "from-credential"
    assert config.mqtt.password == "mqtt-secret"
    assert config.mqtt.username == "edge"  # the rest of the section is the file's
    assert [c.password for c in config.chargers] == ["credential-1", "p2p2p2p2"]


def test_the_environment_wins_over_a_credential(
    tmp_path: Path, site_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVPARK_CENTRAL__SITE_KEY", "from-environment")
    found = _credentials(tmp_path, {"central__site_key": "from-credential"})
    assert load_site_config(site_file, found).central.site_key == "from-environment"


def test_a_blank_credential_sets_nothing(tmp_path: Path, site_file: Path) -> None:
    # the unit's SetCredential=NAME:\n default when the file to load is missing
    found = _credentials(tmp_path, {"mqtt__password": "\n", "ocpp__tls__key_file": "\n"})
    config = load_site_config(site_file, found)
    assert config.mqtt.password == "file-password"
    assert config.ocpp.tls is None


def test_the_tls_key_credential_is_the_key_file(tmp_path: Path) -> None:
    site = {**SITE, "ocpp": {"tls": {"cert_file": "/etc/evpark/edge.pem", "key_file": "/no"}}}
    path = write_site_toml(tmp_path / "site.toml", site)
    found = _credentials(tmp_path, {"ocpp__tls__key_file": "-----BEGIN PRIVATE KEY-----\n"})
    config = load_site_config(path, found)
    assert config.ocpp.tls is not None
    assert config.ocpp.tls.key_file == tmp_path / "credentials" / "ocpp__tls__key_file"
    assert config.ocpp.tls.cert_file == Path("/etc/evpark/edge.pem")


def test_a_password_for_a_charger_the_file_does_not_list_is_an_error(
    tmp_path: Path, site_file: Path
) -> None:
    found = _credentials(tmp_path, {"chargers__CP-9__password": "nobody's"})
    with pytest.raises(ConfigError) as caught:
        load_site_config(site_file, found)
    assert caught.value.problems == [
        ("CREDENTIALS_DIRECTORY/chargers__CP-9__password", "no such charger in [[chargers]]")
    ]


def test_an_unreadable_credential_is_reported_with_the_files_other_problems(
    tmp_path: Path,
) -> None:
    site = {**SITE, "http": {"port": -1}}
    path = write_site_toml(tmp_path / "site.toml", site)
    _credentials(tmp_path, {"other-programs-file": "left alone"})
    (tmp_path / "credentials" / "mqtt__password").mkdir()  # not a file
    with pytest.raises(ConfigError) as caught:
        load_site_config(path, Credentials.read(tmp_path / "credentials"))
    fields = [field for field, _ in caught.value.problems]
    assert fields == ["CREDENTIALS_DIRECTORY/mqtt__password", "http.port"]


def test_credentials_come_from_the_directory_systemd_names(
    tmp_path: Path, site_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVPARK_CENTRAL__SITE_KEY", raising=False)
    _credentials(tmp_path, {"central__site_key": "from-credential"})
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "credentials"))
    assert load_site_config(site_file).central.site_key == "from-credential"
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    assert load_site_config(site_file).central.site_key == "from-the-file"


def test_every_secret_of_the_site_has_a_credential_name() -> None:
    assert credential_names(["CP-1"]) == [
        "central__site_key",
        "mqtt__password",
        "ocpp__tls__key_file",
        "chargers__CP-1__password",
    ]
