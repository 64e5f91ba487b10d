"""The process's open-files limit, raised at start so chargers are never refused for want of fds.

Every websocket and HTTP connection holds a file descriptor. A soft limit of 1024 (the
usual default outside systemd) would cap a site at about a thousand connections of both
servers together; the hard limit is usually far higher, and raising the soft limit up to
it needs no privilege.
"""

from __future__ import annotations

import resource
from typing import Final

import structlog

log = structlog.get_logger(__name__)

# Enough for thousands of chargers plus the HTTP side; more is never asked for.
TARGET: Final = 65_536
# Below this, a warning: a busy site may run out.
LOW: Final = 4_096


def raise_open_files_limit(target: int = TARGET) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``target`` (at most the hard limit); the limit
    now in force is returned, with a warning log line when it stays below :data:`LOW`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = target if hard == resource.RLIM_INFINITY else min(target, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as err:
            log.warning("edge.fd_limit.not_raised", soft=soft, hard=hard, error=str(err))
        else:
            log.info("edge.fd_limit.raised", before=soft, now=wanted, hard=hard)
            soft = wanted
    if soft != resource.RLIM_INFINITY and soft < LOW:
        log.warning(
            "edge.fd_limit.low",
            soft=soft,
            hard=hard,
            hint="raise LimitNOFILE (systemd) or `ulimit -Hn`: each connection needs one",
        )
    return soft
