"""The harness's child processes: stopping several at once, and one that ignores SIGTERM."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from tests.harness.processes import DaemonProcess, stop_all

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
# says "ready" once SIGTERM can no longer stop it, so the test signals only after that
STUBBORN = [
    sys.executable,
    "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)",
]


def test_stop_all_terminates_each_and_kills_one_that_ignores_sigterm(tmp_path: Path) -> None:
    polite = DaemonProcess("sleeper", SLEEPER, tmp_path / "sleeper.log")
    stubborn = DaemonProcess("stubborn", STUBBORN, tmp_path / "stubborn.log")
    never_started = DaemonProcess("never started", SLEEPER, tmp_path / "never.log")
    polite.start()
    stubborn.start()
    stubborn.wait_until(
        lambda: "ready" in stubborn.log.read_text(), "it ignores SIGTERM", within=30
    )

    codes = stop_all([polite, stubborn, never_started], within=1)

    assert codes == [-signal.SIGTERM, None, None]
    assert not polite.alive()
    assert not stubborn.alive()
    assert stubborn.exit_code() == -signal.SIGKILL
