"""The edge's secrets as systemd credentials: files in ``$CREDENTIALS_DIRECTORY``.

``LoadCredential=`` (systemd/evpark-edge.service) hands the daemon files that its user
cannot read where they are kept. Each is named after the setting it holds, as the
setting's environment variable is, lower-case and without ``EVPARK_``:
``central__site_key``, ``mqtt__password``, ``chargers__<charger id>__password``; and
``ocpp__tls__key_file`` is the TLS private key itself (``ocpp.tls.key_file`` becomes its
path). Precedence: environment > credential > TOML file. An empty file (what the unit's
``SetCredential=NAME:\\n`` leaves when the source file is missing) sets nothing; other files
in the directory are not ours and are left alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from edge.core.ids import charger_key

CREDENTIALS_ENV: Final = "CREDENTIALS_DIRECTORY"

# credential name -> the (section, key) of the setting it holds as text
TEXT_SECRETS: Final = {
    "central__site_key": ("central", "site_key"),
    "mqtt__password": ("mqtt", "password"),
}
# the credential that is the TLS private key: the setting is its path
TLS_KEY: Final = "ocpp__tls__key_file"
_CHARGER_PASSWORD: Final = re.compile(r"^chargers__(?P<id>.+)__password$")


def charger_password_name(charger_id: str) -> str:
    """The credential holding a charger's HTTP Basic password."""
    return f"chargers__{charger_id}__password"


def credential_names(charger_ids: Iterable[str]) -> list[str]:
    """Every credential the edge reads, for a site with these chargers."""
    return [*TEXT_SECRETS, TLS_KEY, *(charger_password_name(c) for c in charger_ids)]


@dataclass(frozen=True)
class Credentials:
    """The credentials found (those with content), by name; ``directory`` is where."""

    directory: Path | None
    found: Mapping[str, str]  # name -> text, stripped (the TLS key: its path)
    problems: list[tuple[str, str]]

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        env = os.environ if environ is None else environ
        named = env.get(CREDENTIALS_ENV, "")
        return cls.read(Path(named)) if named else cls(None, {}, [])

    @classmethod
    def read(cls, directory: Path) -> Credentials:
        found: dict[str, str] = {}
        problems: list[tuple[str, str]] = []
        for name in _ours(directory, problems):
            path = directory / name
            try:
                content = path.read_bytes().strip()
                text = "" if name == TLS_KEY else content.decode()
            except (OSError, UnicodeDecodeError) as err:
                problems.append((f"{CREDENTIALS_ENV}/{name}", _why(err)))
                continue
            if content:
                found[name] = str(path) if name == TLS_KEY else text
        return cls(directory, found, problems)

    def lay_over(self, raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """The file's settings (``raw``) with the credentials' in place of its own, and
        every problem: a credential that cannot be read, a password for a charger that
        ``[[chargers]]`` does not list."""
        values: dict[str, Any] = {}
        for name, (section, key) in TEXT_SECRETS.items():
            if name in self.found:
                values.setdefault(section, {})[key] = self.found[name]
        if TLS_KEY in self.found:
            values["ocpp"] = {"tls": {"key_file": self.found[TLS_KEY]}}
        passwords = {  # charger ids ignore case, their credentials' names too
            charger_key(match["id"]): (name, text)
            for name, text in self.found.items()
            if (match := _CHARGER_PASSWORD.match(name))
        }
        listed = raw.get("chargers")
        chargers = [c for c in listed if isinstance(c, dict)] if isinstance(listed, list) else []
        if passwords:
            values["chargers"] = [_with_password(c, passwords) for c in chargers]
        known = {charger_key(str(c.get("id", ""))) for c in chargers}
        problems = self.problems + [
            (f"{CREDENTIALS_ENV}/{name}", "no such charger in [[chargers]]")
            for key, (name, _) in sorted(passwords.items())
            if key not in known
        ]
        return _laid_over(raw, values), problems


def _ours(directory: Path, problems: list[tuple[str, str]]) -> list[str]:
    try:
        names = sorted(entry.name for entry in directory.iterdir())
    except OSError as err:
        problems.append((CREDENTIALS_ENV, f"{directory}: {_why(err)}"))
        return []
    return [n for n in names if n in TEXT_SECRETS or n == TLS_KEY or _CHARGER_PASSWORD.match(n)]


def _with_password(
    charger: dict[str, Any], passwords: Mapping[str, tuple[str, str]]
) -> dict[str, Any]:
    found = passwords.get(charger_key(str(charger.get("id", ""))))
    return charger if found is None else {**charger, "password": found[1]}


def _why(err: OSError | UnicodeDecodeError) -> str:
    if isinstance(err, UnicodeDecodeError):
        return "not UTF-8 text"
    return err.strerror or str(err)


def _laid_over(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``top``'s values in place of its own, tables merged key by key."""
    merged = dict(base)
    for key, value in top.items():
        below = merged.get(key)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            value = _laid_over(below, value)
        merged[key] = value
    return merged
