"""What must hold before the edge starts: the files the config names, its ports, its data.

``file_problems`` is shared by ``evpark config check`` and the daemon; ``preflight`` adds
what only the daemon may try (binding the ports, opening the database). Each problem names
the config key that sets the thing, so an operator knows what to change.
"""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
import ssl
from pathlib import Path

from edge.config import SiteConfig


class StartupError(Exception):
    """The edge cannot start; the message is one line for the operator (no traceback)."""


def named_files(config: SiteConfig) -> list[tuple[str, Path]]:
    """The files the config names that must be readable, with the key that names each."""
    files: list[tuple[str, Path]] = []
    tls = config.ocpp.tls
    if tls is not None:
        files += [("ocpp.tls.cert_file", tls.cert_file), ("ocpp.tls.key_file", tls.key_file)]
        if tls.client_ca_file is not None:
            files.append(("ocpp.tls.client_ca_file", tls.client_ca_file))
    if config.mqtt.ca_file is not None:
        files.append(("mqtt.ca_file", config.mqtt.ca_file))
    return files


def file_problems(config: SiteConfig, data_dir: Path | None = None) -> list[tuple[str, str]]:
    """Every named file that is missing or unreadable, a TLS pair that does not load, and a
    data directory (``data_dir`` when a flag overrides the config's) that cannot be
    written; (key, message) each."""
    problems: list[tuple[str, str]] = []
    for key, path in named_files(config):
        try:
            with path.open("rb"):
                pass
        except OSError as err:
            problems.append((key, f"{path}: {err.strerror or err}"))
    if not problems and config.ocpp.tls is not None:
        from edge.ocpp.server import server_tls  # ssl set-up only, on demand

        try:
            server_tls(config)
        except (ssl.SSLError, OSError) as err:
            problems.append(("ocpp.tls", f"the certificate, key or CA do not load: {err}"))
    data_dir = data_dir or config.storage.data_dir
    problem = _not_writable(data_dir)
    if problem is not None:
        problems.append(("storage.data_dir", f"{data_dir}: {problem}"))
    return problems


def _not_writable(directory: Path) -> str | None:
    """Why the daemon could not create files in ``directory`` (made if missing), or None."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def _check_port(key: str, host: str, port: int) -> None:
    """Bind ``host:port`` as the server will (SO_REUSEADDR), then let it go."""
    if port == 0:  # any free port: nothing to check
        return
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as err:
        raise StartupError(f"{key.rsplit('.', 1)[0]}.host {host!r}: {err.strerror}") from err
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as err:
                why = "is in use" if err.errno == errno.EADDRINUSE else f"cannot be bound: {err}"
                raise StartupError(
                    f"port {port} on {host} ({key}) {why}: stop what uses it or change {key}"
                ) from err


def _check_database(path: Path) -> None:
    if not path.exists():
        return
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise StartupError(f"database {path} (storage.data_dir) cannot be read: {err}") from err


def preflight(config: SiteConfig) -> None:
    """Raise :class:`StartupError` if the daemon cannot start: every file problem at once,
    else the first port or database problem."""
    problems = file_problems(config)
    if problems:
        raise StartupError("; ".join(f"{key}: {message}" for key, message in problems))
    _check_port("ocpp.port", config.ocpp.host, config.ocpp.port)
    _check_port("http.port", config.http.host, config.http.port)
    _check_database(config.storage.database)
