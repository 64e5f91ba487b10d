"""Where central's settings come from, and the mistakes in them that pydantic cannot see.

Sources, strongest first: the CLI's options, environment variables ``EVPARK_CENTRAL_<KEY>``,
secret files, the TOML file named by ``EVPARK_CENTRAL_CONFIG`` (or ``--config``), defaults.

Secret files are named after the setting as its environment variable is, lower-case and
without the prefix (``internal_token``, ``database_url``, ``notification__smtp__password``),
in ``/run/secrets`` (compose, Kubernetes) and ``$CREDENTIALS_DIRECTORY`` (systemd's
``LoadCredential``; it wins over ``/run/secrets``). Other files there are not ours and are
left alone.

pydantic refuses unknown keys in the file (``extra="forbid"``); an environment variable
with the prefix that names no setting never reaches it, so :func:`unknown_environment`
finds those. A file that cannot be read is a problem too, never silently no file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Final

ENV_PREFIX: Final = "EVPARK_CENTRAL_"
CONFIG_ENV: Final = "EVPARK_CENTRAL_CONFIG"  # names the file: not a setting, allowed
RUN_SECRETS: Final = Path("/run/secrets")


class CentralConfigError(Exception):
    """Central's settings cannot be used: ``problems`` holds every (key, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{key}: {message}" for key, message in problems))


def secret_dirs(environ: Mapping[str, str]) -> list[Path]:
    """The directories secret files are read from, weakest first."""
    dirs = [RUN_SECRETS]
    credentials = environ.get("CREDENTIALS_DIRECTORY")
    if credentials:
        dirs.append(Path(credentials))
    return dirs


def unknown_environment(
    environ: Mapping[str, str], fields: Collection[str]
) -> list[tuple[str, str]]:
    """Variables with the prefix that name no setting (a nested key under a known setting
    is pydantic's to judge). ``EVPARK_CENTRAL__...`` is the edge's ``central`` section
    (prefix ``EVPARK_``), not ours."""
    problems = []
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX) or name.upper() == CONFIG_ENV:
            continue
        rest = name[len(ENV_PREFIX) :]
        if not rest or rest.startswith("_"):
            continue
        if rest.split("__", 1)[0].lower() not in fields:
            problems.append((name, "unknown setting (environment variable)"))
    return problems


def config_file_problem(path: Path) -> tuple[str, str] | None:
    """Why the TOML file named by ``EVPARK_CENTRAL_CONFIG`` cannot be used, or None."""
    try:
        with path.open("rb") as fh:
            tomllib.load(fh)
    except FileNotFoundError:
        return (str(path), f"no such file (named by {CONFIG_ENV} or --config)")
    except OSError as err:
        return (str(path), f"cannot be read: {err.strerror or err}")
    except tomllib.TOMLDecodeError as err:
        return (str(path), f"not valid TOML: {err}")
    return None


def config_file(environ: Mapping[str, str]) -> Path | None:
    name = environ.get(CONFIG_ENV)
    return Path(name) if name else None
