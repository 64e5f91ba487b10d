"""The uplink waits as long as central's ``Retry-After`` says when central sheds load."""

from __future__ import annotations

import pytest

from edge.uplink.sync import BUSY_CAP_S, busy_wait


@pytest.mark.parametrize(
    ("status", "header", "wait"),
    [
        (503, "30", 30.0),
        (429, "7", 7.0),
        (503, "100000", BUSY_CAP_S),
        (503, "-3", 0.0),
        (503, None, None),  # no word of when: the ordinary backoff
        (503, "Wed, 21 Oct 2026 07:28:00 GMT", None),
        (500, "30", None),
        (200, "30", None),
    ],
)
def test_busy_wait(status: int, header: str | None, wait: float | None) -> None:
    assert busy_wait(status, header) == wait
