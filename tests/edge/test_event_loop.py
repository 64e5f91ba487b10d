"""The daemon's choice of event loop (`runtime.event_loop`)."""

from __future__ import annotations

import sys

import pytest

from edge.event_loop import EventLoopUnavailable, loop_factory, loop_name


@pytest.mark.parametrize(
    ("choice", "expected"), [("auto", "uvloop"), ("uvloop", "uvloop"), ("asyncio", "asyncio")]
)
def test_the_choice_gives_that_loop(choice: str, expected: str) -> None:
    loop = loop_factory(choice)()  # type: ignore[arg-type]
    try:
        assert loop_name(loop) == expected
    finally:
        loop.close()


def test_uvloop_asked_for_and_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # makes `import uvloop` fail
    with pytest.raises(EventLoopUnavailable, match="pip install uvloop"):
        loop_factory("uvloop")
