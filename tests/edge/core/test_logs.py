"""Log requests as plain data: which are open, which upload is refused, the request a 1.6
diagnostics status belongs to, safe file names, and the edge's address for chargers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edge.config import HttpSection
from edge.core import logs
from edge.core.ids import ChargerId
from edge.services.logs import public_base

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def request(id: int, log_type: logs.LogType = "DiagnosticsLog") -> logs.LogRequest:
    expires = NOW + timedelta(hours=1)
    return logs.LogRequest(id, ChargerId("CP-1"), log_type, logs.token_hash(f"t{id}"), NOW, expires)


def test_a_request_is_open_until_refused_finished_or_expired() -> None:
    assert request(1).is_open(NOW)
    assert not request(1).is_open(NOW + timedelta(hours=1))
    assert not logs.answered(request(1), "Rejected", None).is_open(NOW)
    assert not logs.answered(request(1), logs.NOT_SENT, None).is_open(NOW)
    uploading = logs.with_status(request(1), "Uploading", NOW)
    assert uploading.is_open(NOW)
    assert uploading.status == "Uploading"
    for final in ("Uploaded", "UploadFailed", "UploadFailure", "PermissionDenied"):
        assert not logs.with_status(uploading, final, NOW).is_open(NOW)


def test_an_upload_is_refused_once_a_file_came_or_the_token_expired() -> None:
    fresh = request(1)
    assert logs.upload_refusal(fresh, NOW) is None
    assert logs.upload_refusal(fresh, fresh.expires_at) == "expired"
    received = logs.ReceivedFile("1-a.log", 3, "00", "uploads/CP-1/1-a.log", NOW)
    assert logs.upload_refusal(logs.with_file(fresh, received), NOW) == "used"
    assert logs.upload_refusal(logs.answered(fresh, "Rejected", None), NOW) == "closed"
    # a failed upload leaves no file: the charger may try again
    assert logs.upload_refusal(logs.with_status(fresh, "UploadFailed", NOW), NOW) is None


def test_a_diagnostics_status_goes_to_the_newest_open_diagnostics_request() -> None:
    older, security = request(1), request(2, "SecurityLog")
    newest = request(3)
    done = logs.with_status(request(4), "Uploaded", NOW)
    found = logs.latest_open([older, security, newest, done], "DiagnosticsLog", NOW)
    assert found is newest
    assert logs.latest_open([done, security], "DiagnosticsLog", NOW) is None


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("diag.log", "7-diag.log"),
        ("../../etc/passwd", "7-passwd"),
        ("..\\..\\boot.ini", "7-boot.ini"),
        (".hidden", "7-hidden"),
        ("..", "7-upload.bin"),
        ("", "7-upload.bin"),
        (None, "7-upload.bin"),
        ("a b;rm -rf$(x).tar.gz", "7-a_b_rm_-rf_x_.tar.gz"),
        ("x" * 300, "7-" + "x" * logs.MAX_NAME),
    ],
)
def test_file_names_are_one_safe_path_component(raw: str | None, stored: str) -> None:
    assert logs.safe_file_name(raw, 7) == stored


@pytest.mark.parametrize(
    ("section", "address"),
    [
        ({"host": "192.168.1.5"}, "http://192.168.1.5:8080"),
        ({"host": "fd00::5"}, "http://[fd00::5]:8080"),
        ({"host": "0.0.0.0"}, None),
        ({"host": "::"}, None),
        (
            {"host": "0.0.0.0", "public_url": "https://edge.site.example/"},
            "https://edge.site.example",
        ),
    ],
)
def test_the_address_chargers_upload_to(section: dict[str, str], address: str | None) -> None:
    assert public_base(HttpSection(**section), 8080) == address


def test_a_public_url_with_a_path_or_query_is_refused() -> None:
    with pytest.raises(ValueError, match="public_url"):
        HttpSection(public_url="http://edge/uploads?x=1")
