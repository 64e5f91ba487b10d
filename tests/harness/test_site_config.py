"""The harness's site file writer: what it writes reads back the same, through ``tomllib``
and through the edge's own loader."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.config import load_site_config
from tests.harness.site_config import site_toml, write_site_toml


def test_every_kind_of_value_reads_back_as_written() -> None:
    sections: dict[str, Any] = {
        "site": {"id": "s-1", "name": 'quote " backslash \\ tab \t line\nend', "live": True},
        "ocpp": {"port": 9000, "call_timeout": 0.5, "big": 2**63 - 1, "off": False},
        "storage": {"data_dir": Path("/tmp/d ir/ü"), "unset": None},
        "authorization": {"id_tags": ["A", "B"], "empty": [], "mixed": [1, 2.5, "x", [True]]},
        "http": {"limits": {"max": 3, "deeper": {"on": True}}, "inline": [{"a": 1}, 2]},
        "chargers": [{"id": "CP-1", "tls": {"cert": "c.pem"}}, {"id": "CP-2", "password": None}],
        "odd keys": {"a.b": 1, "": 2, "ключ": 3, "new\n": 4},
        "emptytable": {},
    }
    assert tomllib.loads(site_toml(sections)) == {
        "site": {"id": "s-1", "name": 'quote " backslash \\ tab \t line\nend', "live": True},
        "ocpp": {"port": 9000, "call_timeout": 0.5, "big": 2**63 - 1, "off": False},
        "storage": {"data_dir": "/tmp/d ir/ü"},
        "authorization": {"id_tags": ["A", "B"], "empty": [], "mixed": [1, 2.5, "x", [True]]},
        "http": {"limits": {"max": 3, "deeper": {"on": True}}, "inline": [{"a": 1}, 2]},
        "chargers": [{"id": "CP-1", "tls": {"cert": "c.pem"}}, {"id": "CP-2"}],
        "odd keys": {"a.b": 1, "": 2, "ключ": 3, "new\n": 4},
        "emptytable": {},
    }


def test_a_comment_leads_and_floats_keep_their_spelling() -> None:
    text = site_toml({"x": {"inf": float("inf"), "tiny": 1e-05}}, comment="written by a test\n2")
    assert text.startswith("# written by a test\n# 2\n\n[x]\n")
    assert tomllib.loads(text) == {"x": {"inf": float("inf"), "tiny": 1e-05}}


def test_a_value_toml_cannot_hold_is_refused() -> None:
    with pytest.raises(TypeError, match="bytes"):
        site_toml({"site": {"id": b"raw"}})


@given(st.text(), st.text())
def test_any_text_round_trips_as_a_key_and_a_value(key: str, value: str) -> None:
    assert tomllib.loads(site_toml({"t": {key: value}})) == {"t": {key: value}}


def test_the_edge_loads_a_written_site_file(tmp_path: Path) -> None:
    path = write_site_toml(
        tmp_path / "site.toml",
        {
            "site": {"id": "harness-site", "environment": "development"},
            "ocpp": {"host": "127.0.0.1", "port": 9100, "auto_register": True},
            "http": {"port": 9101},
            "storage": {"data_dir": tmp_path / "data"},
            "authorization": {"id_tags": ["TAG-1", "TAG-2"]},
            "mqtt": {"url": "mqtt://127.0.0.1:9102", "embedded": False},
            "chargers": [{"id": "CP-1", "password": "a long password"}, {"id": "CP-2"}],
            "slots": [
                {"id": "A1", "type": "ev", "sensor": "S-A1", "charger": "CP-1", "evse": 1},
                {"id": "B1", "sensor": "S-B1"},
            ],
            "central": {"batch_interval": 0.2, "batch_size": 500},
        },
    )
    config = load_site_config(path)
    assert config.site.id == "harness-site"
    assert (config.ocpp.port, config.ocpp.auto_register, config.http.port) == (9100, True, 9101)
    assert config.storage.data_dir == tmp_path / "data"
    assert config.authorization.id_tags == ["TAG-1", "TAG-2"]
    assert config.mqtt.embedded is False
    assert [(c.id, c.password) for c in config.chargers] == [
        ("CP-1", "a long password"),
        ("CP-2", None),
    ]
    assert [(s.id, s.charger, s.evse) for s in config.slots] == [
        ("A1", "CP-1", 1),
        ("B1", None, None),
    ]
    assert (config.central.batch_interval, config.central.batch_size) == (0.2, 500)
