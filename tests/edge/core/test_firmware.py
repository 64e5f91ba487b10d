"""The firmware update state machine (edge.core.firmware), with a fixed clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.core import firmware as fw
from edge.core.firmware import FirmwareState as S

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def fresh(request_id: int = 7) -> fw.FirmwareUpdate:
    return fw.requested(
        "CP-1", request_id, "https://fw.example/2.1.bin", signed=False, answer="Accepted",
        at=T0, from_version="1.0", retrieve_at=None,
    )  # fmt: skip


def words(folder: str, schema: str) -> set[str]:
    text = resources.files("ocpp").joinpath(folder, "schemas", schema).read_text()
    found = json.loads(text)
    if "definitions" in found:
        return set(found["definitions"]["FirmwareStatusEnumType"]["enum"])
    return set(found["properties"]["status"]["enum"])


def test_every_status_word_of_both_versions_has_a_state() -> None:
    every = (
        words("v16", "FirmwareStatusNotification.json")
        | words("v16", "SignedFirmwareStatusNotification.json")
        | words("v201", "FirmwareStatusNotificationRequest.json")
    )
    assert every == set(fw.STATES)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("DownloadScheduled", S.DOWNLOADING),
        ("Downloading", S.DOWNLOADING),
        ("DownloadPaused", S.DOWNLOADING),
        ("Downloaded", S.DOWNLOADED),
        ("SignatureVerified", S.DOWNLOADED),
        ("InstallScheduled", S.INSTALLING),
        ("Installing", S.INSTALLING),
        ("InstallRebooting", S.INSTALLING),
        ("Installed", S.INSTALLED),
        ("DownloadFailed", S.FAILED),
        ("InvalidSignature", S.FAILED),
        ("InstallationFailed", S.FAILED),
        ("InstallVerificationFailed", S.FAILED),
        ("Idle", S.IDLE),
    ],
)
def test_a_status_moves_the_update_and_keeps_the_chargers_word(
    status: str, state: fw.FirmwareState
) -> None:
    later = T0 + timedelta(minutes=1)
    moved = fw.on_status(fresh(), status, 7, later)
    assert (moved.state, moved.status, moved.updated_at) == (state, status, later)
    assert moved.requested_at == T0


def test_unsigned_16_statuses_name_no_request_and_move_the_current_one() -> None:
    assert fw.on_status(fresh(), "Downloading", None, T0).state is S.DOWNLOADING


def test_another_requests_status_does_not_move_it() -> None:
    update = fresh(7)
    assert fw.on_status(update, "DownloadFailed", 6, T0) is update


def test_an_unknown_word_does_not_move_it() -> None:
    update = fresh()
    assert fw.on_status(update, "Exploded", None, T0) is update


def test_idle_after_the_end_keeps_the_outcome() -> None:
    done = fw.on_status(fresh(), "Installed", 7, T0)
    assert fw.on_status(done, "Idle", None, T0) is done
    failed = fw.on_status(fresh(), "DownloadFailed", 7, T0)
    assert fw.on_status(failed, "Idle", None, T0) is failed


def test_a_boot_with_a_new_version_while_installing_completes_it() -> None:
    installing = fw.on_status(fresh(), "Installing", None, T0)
    later = T0 + timedelta(minutes=2)
    done = fw.on_boot(installing, "2.1", later)
    assert (done.state, done.to_version, done.updated_at) == (S.INSTALLED, "2.1", later)
    assert done.status == "Installing"  # the charger's own last word


@pytest.mark.parametrize(("status", "version"), [("Installing", "1.0"), ("Installing", ""),
                                                 ("Downloading", "2.1")])  # fmt: skip
def test_a_boot_proves_nothing_otherwise(status: str, version: str) -> None:
    update = fw.on_status(fresh(), status, None, T0)
    assert fw.on_boot(update, version, T0) is update


@given(
    st.lists(st.tuples(st.sampled_from([*fw.STATES, "Nonsense"]), st.sampled_from([None, 6, 7])))
)
def test_any_sequence_keeps_the_request_and_ends_in_a_known_state(
    steps: list[tuple[str, int | None]],
) -> None:
    update = fresh(7)
    for status, request_id in steps:
        update = fw.on_status(update, status, request_id, T0)
        assert update.request_id == 7
        assert update.state in S
        assert update.status is None or update.status in fw.STATES


def test_request_ids_count_up_and_wrap_within_32_bits() -> None:
    assert fw.next_request_id(0) == 1
    assert fw.next_request_id(41) == 42
    assert fw.next_request_id(2**31 - 1) == 1


@pytest.mark.parametrize(
    "location",
    ["https://fw.example/a.bin", "http://10.0.0.1:8080/x", "ftp://u:p@host/fw", "FTPS://h/x"],
)
def test_good_locations(location: str) -> None:
    assert fw.order(location).location == location


@pytest.mark.parametrize(
    "location",
    ["", "fw.bin", "file:///etc/passwd", "http://", "http://:80/x", "https://h/a b",
     "https://h/\x00", "javascript://x", "https://h/" + "x" * 600],
)  # fmt: skip
def test_bad_locations(location: str) -> None:
    with pytest.raises(fw.BadOrder, match="location"):
        fw.order(location)


def test_order_from_a_form_or_a_payload() -> None:
    form = {"location": " https://h/fw.bin ", "retries": "3", "retry_interval": "",
            "retrieve_at": "2026-05-01T14:00:00+02:00", "signature": ""}  # fmt: skip
    assert fw.order_from(form) == fw.FirmwareOrder("https://h/fw.bin", retrieve_at=T0, retries=3)
    for bad in ({}, {"location": 5}, {"location": "https://h/x", "retries": True},
                {"location": "https://h/x", "retries": "-1"},
                {"location": "https://h/x", "retrieve_at": "2026-05-01T12:00:00"}):  # fmt: skip
        with pytest.raises(fw.BadOrder):
            fw.order_from(bad)
