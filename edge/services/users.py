"""Users of the edge's web UI and API: roles, argon2 password hashes, login sessions, API
tokens and the audit trail of their actions, as SQL over the site's store.

Reads take a ``sqlite3.Connection``; writes append to a :class:`~edge.storage.sqlite.Unit`, so the
daemon sends them through its writer and the ``evpark users`` command runs them in its
own transaction on the same database (WAL: both at once). The ``check_*`` functions are
the rules both apply before a change (names, duplicates, never losing the last admin).

Only hashes of secrets are stored: argon2id for passwords, SHA-256 for the random
256-bit session and API tokens (they are not guessable, so a fast hash is enough).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from common.timestamps import format_timestamp
from edge.storage.site_sql import parse_iso
from edge.storage.sqlite import Unit

USERNAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD_LENGTH: Final = 10
MAX_PASSWORD_LENGTH: Final = 1024


class Role(StrEnum):
    VIEWER = "viewer"  # sees everything
    TECHNICIAN = "technician"  # and acts: charger commands, slots, reservations
    ADMIN = "admin"  # and manages users

    def allows(self, needed: Role) -> bool:
        return _RANK[self] >= _RANK[needed]


_RANK: Final = {Role.VIEWER: 0, Role.TECHNICIAN: 1, Role.ADMIN: 2}


class UserError(ValueError):
    """A user change that cannot be made: a bad name or password, a duplicate, an unknown
    user, or one that would leave the site without an admin."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: Role
    created_at: datetime | None = None
    last_login: datetime | None = None


@dataclass(frozen=True, slots=True)
class LoginSession:
    user: User
    csrf_token: str
    expires_at: datetime


# --- secrets -------------------------------------------------------------------------


class Passwords:
    """argon2id hashing with the library's recommended parameters."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # Verified when the user does not exist, so that a wrong name costs the same time.
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        return str(self._hasher.hash(check_password(password)))

    def verify(self, stored_hash: str | None, password: str) -> bool:
        if len(password) > MAX_PASSWORD_LENGTH:
            return False
        if self._dummy is None:
            self._dummy = str(self._hasher.hash(secrets.token_urlsafe(16)))
        try:
            self._hasher.verify(stored_hash or self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        return bool(self._hasher.check_needs_rehash(stored_hash))


def new_token() -> str:
    """A random 256-bit token, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_username(username: str) -> str:
    if not USERNAME.match(username):
        raise UserError(
            "a user name is 1 to 64 letters, digits or _ . @ - and starts with a letter or digit"
        )
    return username


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    return password


def parse_role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError as err:
        raise UserError(f"no role {text!r}: one of {', '.join(Role)}") from err


# --- reads ---------------------------------------------------------------------------


def _user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        role=Role(row["role"]),
        created_at=parse_iso(row["created_at"]),
        last_login=parse_iso(row["last_login"]),
    )


_USER_COLUMNS: Final = "users.id, username, role, users.created_at, last_login"


def count_users(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM users").fetchone()[0])


def find_user(conn: sqlite3.Connection, username: str) -> User | None:
    row = conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?", (username,)
    ).fetchone()
    return _user(row) if row else None


def password_hash_of(conn: sqlite3.Connection, username: str) -> tuple[User, str] | None:
    row = conn.execute(
        f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE username = ?", (username,)
    ).fetchone()
    return (_user(row), row["password_hash"]) if row else None


def list_users(conn: sqlite3.Connection) -> list[User]:
    rows = conn.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username COLLATE NOCASE")
    return [_user(row) for row in rows]


def find_session(conn: sqlite3.Connection, hashed: str, now: datetime) -> LoginSession | None:
    row = conn.execute(
        f"SELECT {_USER_COLUMNS}, csrf_token, expires_at FROM ui_sessions "
        "JOIN users ON users.id = ui_sessions.user_id "
        "WHERE token_hash = ? AND expires_at > ?",
        (hashed, format_timestamp(now)),
    ).fetchone()
    if row is None:
        return None
    expires = parse_iso(row["expires_at"])
    assert expires is not None
    return LoginSession(_user(row), row["csrf_token"], expires)


def find_token_user(conn: sqlite3.Connection, hashed: str) -> User | None:
    row = conn.execute(
        f"SELECT {_USER_COLUMNS} FROM api_tokens JOIN users ON users.id = api_tokens.user_id "
        "WHERE token_hash = ?",
        (hashed,),
    ).fetchone()
    return _user(row) if row else None


def audit_entries(conn: sqlite3.Connection, limit: int = 100) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT at, username, action, target, outcome, detail FROM ui_audit "
        "ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    return [{**dict(row), "detail": orjson.loads(row["detail"])} for row in rows]


# --- rules before a change -----------------------------------------------------------


def _admins(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM users WHERE role = 'admin'").fetchone()[0])


def check_new(conn: sqlite3.Connection, username: str) -> None:
    check_username(username)
    if find_user(conn, username) is not None:
        raise UserError(f"user {username!r} already exists")


def check_existing(conn: sqlite3.Connection, username: str) -> User:
    user = find_user(conn, username)
    if user is None:
        raise UserError(f"no user {username!r}")
    return user


def check_role_change(conn: sqlite3.Connection, username: str, role: Role) -> User:
    user = check_existing(conn, username)
    if user.role is Role.ADMIN and role is not Role.ADMIN and _admins(conn) == 1:
        raise UserError(f"{username!r} is the only admin: make another admin first")
    return user


def check_delete(conn: sqlite3.Connection, username: str) -> User:
    user = check_existing(conn, username)
    if user.role is Role.ADMIN and _admins(conn) == 1:
        raise UserError(f"{username!r} is the only admin: make another admin first")
    return user


# --- writes --------------------------------------------------------------------------


def insert_user(unit: Unit, username: str, hashed: str, role: Role, now: datetime) -> None:
    unit.add(
        "INSERT INTO users (username, password_hash, role, created_at, updated_at) "
        "VALUES (?,?,?,?,?)",
        (username, hashed, role.value, format_timestamp(now), format_timestamp(now)),
    )


def update_role(unit: Unit, username: str, role: Role, now: datetime) -> None:
    unit.add(
        "UPDATE users SET role = ?, updated_at = ? WHERE username = ?",
        (role.value, format_timestamp(now), username),
    )


def update_password(unit: Unit, username: str, hashed: str, now: datetime) -> None:
    """A new password also ends the user's login sessions."""
    unit.add(
        "UPDATE users SET password_hash = ?, updated_at = ? WHERE username = ?",
        (hashed, format_timestamp(now), username),
    )
    unit.add(
        "DELETE FROM ui_sessions WHERE user_id = (SELECT id FROM users WHERE username = ?)",
        (username,),
    )


def delete_user(unit: Unit, username: str) -> None:
    """The user's sessions and API tokens go with it (ON DELETE CASCADE)."""
    unit.add("DELETE FROM users WHERE username = ?", (username,))


def record_login(unit: Unit, user_id: int, now: datetime) -> None:
    unit.add("UPDATE users SET last_login = ? WHERE id = ?", (format_timestamp(now), user_id))


def insert_session(
    unit: Unit,
    hashed: str,
    user_id: int,
    csrf_token: str,
    now: datetime,
    expires_at: datetime,
    client: str,
) -> None:
    unit.add(
        "INSERT INTO ui_sessions (token_hash, user_id, csrf_token, created_at, expires_at, "
        "client) VALUES (?,?,?,?,?,?)",
        (
            hashed,
            user_id,
            csrf_token,
            format_timestamp(now),
            format_timestamp(expires_at),
            client[:100],
        ),
    )


def delete_session(unit: Unit, hashed: str) -> None:
    unit.add("DELETE FROM ui_sessions WHERE token_hash = ?", (hashed,))


def delete_expired_sessions(unit: Unit, now: datetime) -> None:
    unit.add("DELETE FROM ui_sessions WHERE expires_at <= ?", (format_timestamp(now),))


def insert_api_token(unit: Unit, hashed: str, user_id: int, name: str, now: datetime) -> None:
    unit.add(
        "INSERT INTO api_tokens (token_hash, user_id, name, created_at) VALUES (?,?,?,?)",
        (hashed, user_id, name, format_timestamp(now)),
    )


def delete_api_tokens(unit: Unit, username: str) -> None:
    unit.add(
        "DELETE FROM api_tokens WHERE user_id = (SELECT id FROM users WHERE username = ?)",
        (username,),
    )


def add_audit(
    unit: Unit,
    at: datetime,
    username: str,
    action: str,
    target: str,
    outcome: str,
    detail: dict[str, Any],
) -> None:
    unit.add(
        "INSERT INTO ui_audit (at, username, action, target, outcome, detail) VALUES (?,?,?,?,?,?)",
        (
            format_timestamp(at),
            username,
            action,
            target,
            outcome[:200],
            orjson.dumps(detail).decode(),
        ),
    )
