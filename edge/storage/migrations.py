"""Schema migrations of the edge store, applied in order; ``PRAGMA user_version`` is the
number applied. Never edit a released migration: add the next one."""

from __future__ import annotations

from typing import Final

_V1: Final = """
CREATE TABLE chargers (
    id TEXT PRIMARY KEY,
    version TEXT,
    vendor TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    serial TEXT NOT NULL DEFAULT '',
    firmware TEXT NOT NULL DEFAULT '',
    info TEXT NOT NULL DEFAULT '{}',
    auto_registered INTEGER NOT NULL DEFAULT 0,
    first_seen TEXT,
    last_seen TEXT,
    last_boot TEXT,
    boot_status TEXT
);
CREATE TABLE evses (
    charger_id TEXT NOT NULL REFERENCES chargers(id),
    evse_id INTEGER NOT NULL,
    connector_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    error_code TEXT,
    info TEXT,
    updated_at TEXT,
    PRIMARY KEY (charger_id, evse_id)
);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    charger_id TEXT NOT NULL,
    evse_id INTEGER NOT NULL,
    connector_id INTEGER NOT NULL,
    transaction_id TEXT NOT NULL,
    id_tag TEXT,
    id_tag_status TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at TEXT NOT NULL,
    stopped_at TEXT,
    meter_start_wh REAL,
    meter_last_wh REAL,
    meter_stop_wh REAL,
    energy_wh REAL NOT NULL DEFAULT 0,
    power_w REAL,
    soc REAL,
    last_update TEXT,
    status TEXT NOT NULL,
    stop_reason TEXT,
    reservation_id INTEGER,
    orphan INTEGER NOT NULL DEFAULT 0,
    UNIQUE (charger_id, transaction_id)
);
CREATE INDEX sessions_status ON sessions(status);
CREATE INDEX sessions_started ON sessions(started_at);
CREATE INDEX sessions_id_tag ON sessions(id_tag);
CREATE TABLE meter_values (
    id INTEGER PRIMARY KEY,
    charger_id TEXT NOT NULL,
    evse_id INTEGER NOT NULL,
    session_id TEXT,
    at TEXT NOT NULL,
    energy_wh REAL,
    power_w REAL,
    current_a REAL,
    voltage_v REAL,
    soc REAL,
    context TEXT
);
CREATE INDEX meter_values_session ON meter_values(session_id, id);
CREATE INDEX meter_values_at ON meter_values(at);
CREATE TABLE id_tags (
    id_tag TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    expires_at TEXT,
    source TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE charger_events (
    id INTEGER PRIMARY KEY,
    charger_id TEXT NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX charger_events_charger ON charger_events(charger_id, id);
CREATE TABLE outbox (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    subject TEXT,
    time TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
)
"""

# Slots: parking visits, a technician's out-of-service flags, local reservations.
_V2: Final = """
CREATE TABLE visits (
    visit_id TEXT PRIMARY KEY,
    slot_id TEXT NOT NULL,
    arrived_at TEXT NOT NULL,
    departed_at TEXT,
    duration_s REAL,
    reservation_id TEXT,
    session_id TEXT,
    plugged INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX visits_open ON visits(departed_at);
CREATE INDEX visits_slot ON visits(slot_id, arrived_at);
CREATE TABLE slot_flags (
    slot_id TEXT PRIMARY KEY,
    out_of_service INTEGER NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL
);
CREATE TABLE reservations (
    reservation_id TEXT PRIMARY KEY,
    slot_id TEXT NOT NULL,
    until TEXT,
    status TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX reservations_active ON reservations(status, slot_id)
"""

# The technician's web UI: users and their roles, login sessions, API tokens, and the
# audit trail of what each user did.
_V3: Final = """
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'technician', 'admin')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_login TEXT
);
CREATE TABLE ui_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    client TEXT NOT NULL DEFAULT ''
);
CREATE INDEX ui_sessions_user ON ui_sessions(user_id);
CREATE INDEX ui_sessions_expiry ON ui_sessions(expires_at);
CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);
CREATE TABLE ui_audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    username TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX ui_audit_at ON ui_audit(at)
"""

# Sync with central: commands received (stored before they are acknowledged, so none is
# lost or run twice) and key-value state (the acknowledged outbox sequence, rates).
_V4: Final = """
CREATE TABLE cloud_commands (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    finished_at TEXT
);
CREATE INDEX cloud_commands_status ON cloud_commands(status)
"""

# Meter values are found by time (and then session): an index by session made every
# burst of meter values from many chargers dirty one index page per row.
_V5: Final = """
DROP INDEX meter_values_session
"""

# Chargers that are not in the site file connect only once approved (`evpark chargers
# approve`); rows that auto_register added before this start out not approved.
_V6: Final = """
ALTER TABLE chargers ADD COLUMN approved_at TEXT
"""

# Who charges and parks (issue 12): an id tag belongs to a vehicle and a driver, a session
# keeps those of the tag it began with, a reservation those of the command that made it.
_V7: Final = """
ALTER TABLE id_tags ADD COLUMN vehicle_id TEXT;
ALTER TABLE id_tags ADD COLUMN driver_id TEXT;
ALTER TABLE sessions ADD COLUMN vehicle_id TEXT;
ALTER TABLE sessions ADD COLUMN driver_id TEXT;
ALTER TABLE reservations ADD COLUMN vehicle_id TEXT;
ALTER TABLE reservations ADD COLUMN driver_id TEXT;
ALTER TABLE reservations ADD COLUMN id_tag TEXT
"""

# A 2.0.1 transaction started at plug-in waits for its token before central hears of it;
# a restart must not forget that it is still waiting.
_V8: Final = """
ALTER TABLE sessions ADD COLUMN awaiting_token INTEGER NOT NULL DEFAULT 0
"""

# Issue 13: a charger's firmware updates (their state, driven by its status notifications).
# Every accepted request is kept; a charger's current update is its latest.
_V9: Final = """
CREATE TABLE firmware_updates (
    charger_id TEXT NOT NULL,
    request_id INTEGER NOT NULL,
    location TEXT NOT NULL,
    signed INTEGER NOT NULL DEFAULT 0,
    answer TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    from_version TEXT NOT NULL DEFAULT '',
    retrieve_at TEXT,
    state TEXT NOT NULL,
    status TEXT,
    to_version TEXT,
    PRIMARY KEY (charger_id, request_id)
)
"""

# Issue 13: diagnostics and log requests, and the files chargers upload for them.
_V10: Final = """
CREATE TABLE log_requests (
    id INTEGER PRIMARY KEY,
    charger_id TEXT NOT NULL,
    log_type TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    answer TEXT,
    file_name TEXT
);
CREATE INDEX log_requests_by_charger ON log_requests(charger_id, id);
CREATE TABLE log_statuses (
    request_id INTEGER NOT NULL REFERENCES log_requests(id),
    at TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE INDEX log_statuses_by_request ON log_statuses(request_id);
CREATE TABLE log_files (
    request_id INTEGER NOT NULL REFERENCES log_requests(id),
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    received_at TEXT NOT NULL
);
CREATE INDEX log_files_by_request ON log_files(request_id);
"""

# Issue 13: the last known configuration of every charger (keys or variables) and its
# provisioning state.
_V11: Final = """
CREATE TABLE charger_configuration (
    charger_id TEXT NOT NULL,
    key TEXT NOT NULL,  -- a 1.6 key, or a 2.0.1 variable as Component[evse].Variable[instance]
    value TEXT,  -- NULL: the charger did not tell it (2.0.1 WriteOnly)
    readonly INTEGER NOT NULL DEFAULT 0,
    mutability TEXT,  -- 2.0.1 ReadOnly | WriteOnly | ReadWrite
    PRIMARY KEY (charger_id, key)
);
CREATE TABLE charger_provisioning (
    charger_id TEXT PRIMARY KEY,
    read_at TEXT,
    source TEXT,  -- GetConfiguration | NotifyReport
    state TEXT NOT NULL DEFAULT 'none',
    fingerprint TEXT NOT NULL DEFAULT '',
    applied TEXT NOT NULL DEFAULT '[]',
    failed TEXT NOT NULL DEFAULT '[]',
    pending_reboot TEXT NOT NULL DEFAULT '[]',
    reason TEXT,
    updated_at TEXT
);
"""

MIGRATIONS: Final[tuple[str, ...]] = (
    _V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9, _V10, _V11
)  # fmt: skip
