"""Access to real services for tests: skip on a laptop without them, fail under CI.

Free ports and the processes tests start themselves are ``tests.harness``'s.
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest

# still imported from here by tests/central, tests/sync and two tests/edge modules; they
# move to tests.harness.ports, then this line goes

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(what: str) -> None:
    """A service the test needs is not there: a skip on a laptop, a failure under CI."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true but is missing", pytrace=False)
    pytest.skip(f"{what} is missing")


def require_binary(name: str) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None
    )
    if path is None:
        missing(f"the {name} binary")
        raise AssertionError("unreachable")
    return path


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_tcp(what: str, host: str, port: int) -> None:
    if not reachable(host, port):
        missing(f"{what} at {host}:{port}")
