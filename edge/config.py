"""Site configuration: a TOML file, overridable by environment variables.

Environment variables use the prefix ``EVPARK_`` and ``__`` between levels, e.g.
``EVPARK_OCPP__PORT=9001`` or ``EVPARK_CENTRAL__SITE_KEY=...``. Secrets may also come as
systemd credentials (:mod:`edge.credentials`). Precedence: explicit arguments (command-line
flags) > environment > credentials > file > defaults.
"""

from __future__ import annotations

import contextlib
import re
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from common.settings_problems import validation_problems
from edge.core.ids import CHARGER_ID_PATTERN, charger_key
from edge.core.provisioning import (
    BootMode,
    ChargerSetup,
    ValidationMode,
    check_config_key,
    parse_variable_key,
)
from edge.credentials import Credentials

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,47}$"
_PLACEHOLDER = re.compile(r"^(change-?me|changeme|secret|password|xxx+)$", re.IGNORECASE)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Provisioning(_Section):
    """What the site's defaults ([ocpp]) and each charger ([[chargers]]) may say of
    provisioning (docs/provisioning.md): the keys to apply, and how to boot and validate."""

    # 1.6 configuration keys -> values ([ocpp.config], [chargers.config])
    config: dict[str, str] = Field(default_factory=dict)
    # 2.0.1 "Component[evse].Variable[instance]" -> values ([ocpp.variables], ...)
    variables: dict[str, str] = Field(default_factory=dict)

    @field_validator("config")
    @classmethod
    def _config_keys(cls, config: dict[str, str]) -> dict[str, str]:
        for key, value in config.items():
            check_config_key(key, value)
        return config

    @field_validator("variables")
    @classmethod
    def _variable_keys(cls, variables: dict[str, str]) -> dict[str, str]:
        for key, value in variables.items():
            parse_variable_key(key)
            if len(value) > 1000:
                raise ValueError(f"variable {key!r}: its value is over 1000 characters")
        return variables


class SiteSection(_Section):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="site id")
    name: str = ""
    environment: Literal["development", "production"] = "production"
    # the web UI shows times in this zone; the APIs, MQTT and events stay in UTC
    timezone: str = Field(default="UTC", description="IANA time zone, e.g. Europe/Berlin")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin"
            ) from None
        return name

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class TlsSection(_Section):
    """Security profiles 2 (server TLS) and 3 (server TLS + client certificates)."""

    cert_file: Path
    key_file: Path
    # CA bundle that signs charger client certificates; set it for security profile 3
    client_ca_file: Path | None = None


class LockoutSection(_Section):
    """Failed upgrades (bad credentials, unknown id, wrong certificate) per address and id."""

    failures: int = Field(default=5, ge=1, description="failed attempts within `window`")
    window: float = Field(default=60.0, gt=0, description="seconds")
    base: float = Field(default=30.0, gt=0, description="first lockout, seconds; doubles")
    cap: float = Field(default=3600.0, gt=0, description="longest lockout, seconds")
    max_tracked: int = Field(default=10_000, ge=1, description="keys remembered per scope")

    @model_validator(mode="after")
    def _base_within_cap(self) -> LockoutSection:
        if self.base > self.cap:
            raise ValueError(f"base ({self.base}s) must not be longer than cap ({self.cap}s)")
        return self


# What happens when a charger connects while a connection with its id is open:
# "newest" replaces it, "oldest" keeps it unless it is dead, "reject" refuses the newcomer.
ReplaceConnection = Literal["newest", "oldest", "reject"]


class OcppSection(_Provisioning):
    host: str = "127.0.0.1"
    port: int = Field(default=9000, ge=0, le=65535)
    auto_register: bool = False
    # Chargers connect to <path_prefix>/<charge point id>; "" lets them use /<id>. Plain
    # segments only, so the prefix reads the same percent-encoded or not.
    path_prefix: str = Field(default="/ocpp", pattern=r"^(/[A-Za-z0-9._~-]+)*/?$")
    # The version of a charger that offers no subprotocol in its handshake (refused if unset).
    default_version: Literal["1.6", "2.0.1"] | None = None
    heartbeat_interval: int = Field(default=300, ge=10, le=86400, description="seconds")
    # Liveness: websocket pings; a charger that does not answer within ping_timeout is gone.
    # 0: no pings (for chargers that mishandle them).
    ping_interval: float = Field(default=60.0, ge=0)
    ping_timeout: float | None = Field(default=None, gt=0)
    call_timeout: float = Field(default=30.0, gt=0, description="wait for a charger's answer")
    # A session whose charger vanished is closed as inferred-stopped after this long.
    inferred_stop_after: float = Field(default=6 * 3600, gt=0, description="seconds")
    # how long a remote start waits for its session to begin before it is reported failed
    remote_start_timeout: float = Field(default=60.0, gt=0, description="seconds")
    # Connections at once, those still in their handshake included; one more gets 503 at
    # once (keep it under the open-files limit, which the HTTP server shares).
    max_connections: int = Field(default=2000, ge=1)
    # A connection must finish its handshake (TLS included) within this long.
    handshake_timeout: float = Field(default=10.0, gt=0, description="seconds")
    tls: TlsSection | None = None
    lockout: LockoutSection = Field(default_factory=LockoutSection)
    # default: "oldest" in production, "newest" in development
    replace_connection: ReplaceConnection | None = None
    # "oldest": the open connection must answer a ping within this long, or it is dead
    duplicate_probe_timeout: float = Field(default=5.0, gt=0, description="seconds")
    # how soon `evpark chargers approve/remove` reach the running daemon
    registry_refresh: float = Field(default=2.0, gt=0, description="seconds")
    # provisioning (docs/provisioning.md): "pending" holds a charger's boot Pending until
    # the site's keys are applied; each charger may say otherwise
    boot: BootMode = "accept"
    # "strict": a message that breaks its schema is refused, vendor quirks included
    validation: ValidationMode = "tolerant"
    # the interval a Pending boot answer gives: when the charger boots again on its own
    pending_interval: int = Field(default=30, ge=1, le=3600, description="seconds")
    # reading a charger's whole configuration (2.0.1: every NotifyReport part) may take this
    provisioning_timeout: float = Field(default=60.0, gt=0, description="seconds")

    @field_validator("path_prefix")
    @classmethod
    def _without_trailing_slash(cls, prefix: str) -> str:
        return prefix.rstrip("/")  # "/ocpp/" is "/ocpp", "/" is ""

    @model_validator(mode="after")
    def _liveness_outlasts_heartbeat(self) -> OcppSection:
        if self.ping_timeout is None:
            self.ping_timeout = float(self.heartbeat_interval) * 1.5
        if self.ping_timeout <= self.heartbeat_interval:
            raise ValueError(
                f"ping_timeout ({self.ping_timeout}s) must be longer than "
                f"heartbeat_interval ({self.heartbeat_interval}s)"
            )
        return self


class HttpSection(_Section):
    """The local HTTP API and web UI; limits are described in docs/local-api.md."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # Requests from this host (loopback peer and Host, no proxy header) need no login,
    # when the server listens on a loopback address only.
    trust_loopback: bool = True
    max_body: int = Field(default=64 * 1024, ge=1024, description="bytes, every route")
    max_login_body: int = Field(default=8 * 1024, ge=1024, description="bytes, /login")
    max_connections: int = Field(default=200, ge=1, le=100_000)
    max_connections_per_client: int = Field(default=50, ge=1, le=100_000)
    # A request's headers and body must arrive within request_timeout; an idle
    # keep-alive connection is closed after idle_timeout.
    request_timeout: float = Field(default=15.0, gt=0, le=3600, description="seconds")
    idle_timeout: float = Field(default=5.0, gt=0, le=3600, description="seconds")
    # Failed or unfinished logins per client address within login_window; argon2 checks
    # running at once (each takes tens of ms of CPU); more logins waiting get a 429.
    login_attempts: int = Field(default=10, ge=1, le=1000)
    login_window: float = Field(default=300.0, gt=0, description="seconds")
    login_concurrency: int = Field(default=2, ge=1, le=64)
    login_queue: int = Field(default=8, ge=0, le=1000)
    # The edge's address as chargers reach it (upload locations); empty: derived from
    # host and port unless host is a wildcard address (docs/diagnostics.md).
    public_url: str = Field(default="", pattern=r"^(https?://[^/?#\s]+/?)?$")


class DiagnosticsSection(_Section):
    """Log and diagnostics uploads from chargers (docs/diagnostics.md)."""

    max_upload_mb: int = Field(default=50, ge=1, le=10_000)
    # how long a request's upload token is valid: a charger may retry the upload until then
    token_ttl: float = Field(default=3600.0, ge=60, le=7 * 24 * 3600, description="seconds")
    # uploads are refused while the data directory's disk has less free space than this
    min_free_mb: int = Field(default=200, ge=0)


class StorageSection(_Section):
    data_dir: Path = Path("./data")
    # /healthz answers 503 once a write has waited this long for the SQLite writer.
    writer_stall_after: float = Field(default=30.0, gt=0, description="seconds")
    # On stop, how long the writer may take to commit what it was given.
    stop_timeout: float = Field(default=10.0, gt=0, description="seconds")

    @property
    def database(self) -> Path:
        """The site's SQLite file (the daemon's and the admin commands')."""
        return self.data_dir / "edge.sqlite3"


class ChargerConfig(_Provisioning):
    # the OCPP identity rules (edge.core.ids): 1-48 of A-Z a-z 0-9 * - _ = + | @ .
    id: str = Field(pattern=CHARGER_ID_PATTERN)
    # HTTP Basic password (security profile 1); none means the charger may connect without.
    password: str | None = Field(default=None, min_length=8, max_length=40)
    description: str = ""
    # Load management (docs/power.md): what the charger can deliver and how it is wired.
    max_kw: float = Field(default=22.0, gt=0, le=1000)
    phases: Literal[1, 3] = 3
    phase: Literal["L1", "L2", "L3"] | None = None  # a 1-phase charger's phase, if known
    priority: int = Field(default=0, ge=0, le=100)
    # the unit of its charging profiles; unset: as it says at boot, else A
    profile_unit: Literal["A", "W"] | None = None
    # None: the site's ([ocpp] boot, validation); config and variables add to the site's
    boot: BootMode | None = None
    validation: ValidationMode | None = None


class AuthorizationSection(_Section):
    id_tags: list[str] = Field(default_factory=list)
    # Accept any id tag (a free-vend site).
    allow_any_id_tag: bool = False


SlotType = Literal["ev", "standard", "accessible", "motorcycle", "van"]


class SlotConfig(_Section):
    id: str = Field(pattern=ID_PATTERN)
    type: SlotType = "standard"
    sensor: str | None = Field(default=None, pattern=ID_PATTERN)
    charger: str | None = None
    # EVSE id (2.0.1) / connector id (1.6) the slot's bay is served by.
    evse: int | None = Field(default=None, ge=1)
    connector: int = Field(default=1, ge=1)
    label: str = ""

    @model_validator(mode="after")
    def _ev_has_charger(self) -> SlotConfig:
        if self.type == "ev" and (self.charger is None or self.evse is None):
            raise ValueError("an EV slot needs `charger` and `evse`")
        if self.type != "ev" and self.charger is not None:
            raise ValueError("only slots of type 'ev' have a charger")
        return self


class SlotTimingSection(_Section):
    """Times of the slot model, in seconds."""

    debounce: float = Field(default=5.0, ge=0)
    sensor_stale_after: float = Field(default=900.0, gt=0)
    low_battery: int = Field(default=20, ge=0, le=100, description="percent")
    ev_slot_blocked_after: float = Field(default=600.0, gt=0)
    charged_idle_after: float = Field(default=900.0, gt=0)
    sensor_suspect_after: float = Field(default=300.0, gt=0)


class MqttSection(_Section):
    url: str = Field(default="mqtt://127.0.0.1:1883", pattern=r"^mqtts?://[^/\s]+(:\d+)?/?$")
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    client_id: str | None = None
    # Run an embedded broker on `url`'s port when nothing listens there (demo, small sites).
    embedded: bool = False
    # Slot states and the summary are published again this often (and after a reconnect).
    republish_interval: float = Field(default=300.0, gt=0, description="seconds")
    # A sensor's `ts` further than this from the edge's clock is not believed (docs/mqtt.md).
    sensor_clock_tolerance: float = Field(default=300.0, gt=0, description="seconds")
    # A charger EVSE's power and energy go out at most this often (a status change at once).
    charger_state_interval: float = Field(default=5.0, gt=0, description="seconds")
    # Home Assistant's MQTT discovery (docs/home-assistant.md): off unless asked for.
    homeassistant_discovery: bool = False
    homeassistant_prefix: str = Field(
        default="homeassistant", pattern=r"^[^#+/\s]+(/[^#+/\s]+)*$", description="topic"
    )


class CentralSection(_Section):
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    site_key: str | None = None
    batch_size: int = Field(default=500, ge=1, le=5000)
    batch_interval: float = Field(default=1.0, gt=0, description="seconds")
    retention_events: int = Field(default=5_000_000, ge=1000, description="outbox bound")
    # a running session's energy and power go to central at most this often
    progress_interval: float = Field(default=60.0, ge=1, description="seconds")

    @model_validator(mode="after")
    def _key_with_url(self) -> CentralSection:
        if self.url is not None and not self.site_key:
            raise ValueError(
                "central.url needs central.site_key (or EVPARK_CENTRAL__SITE_KEY, or the "
                "credential central__site_key): "
                "make one with `evpark central keys create --scope site --site <id>`"
            )
        return self


class CircuitConfig(_Section):
    id: str = Field(min_length=1, max_length=64)
    limit_kw: float = Field(gt=0, le=100_000)
    chargers: list[str] = Field(min_length=1)


class PowerSection(_Section):
    """Load management (docs/power.md): the site's chargers share its grid connection."""

    # the connection's limit; unset: no load management, no charging profile is sent
    site_limit_kw: float | None = Field(default=None, gt=0, le=100_000)
    phase_limit_a: float | None = Field(default=None, gt=0, le=100_000)
    min_session_kw: float = Field(default=4.2, gt=0, le=1000)
    # what each EVSE gives when its charger loses the edge (and a car before the manager acts)
    failsafe_kw: float = Field(default=3.7, ge=0, le=1000)
    strategy: Literal["fair", "priority", "departure"] = "fair"
    circuits: list[CircuitConfig] = Field(default_factory=list)
    # a grid meter on MQTT (evpark/<site>/grid/power, W): "total" measures the whole
    # connection, chargers included; "building" the rest of the building only
    grid_meter: Literal["none", "total", "building"] = "none"
    cycle_seconds: float = Field(default=10.0, ge=1, le=3600)
    react_seconds: float = Field(default=30.0, gt=0, le=3600)
    rotate_minutes: float = Field(default=15.0, gt=0, le=24 * 60)
    # a limit sent holds this long unless renewed, then the charger falls to the failsafe
    lease_seconds: int = Field(default=300, ge=60, le=86_400)

    @property
    def enabled(self) -> bool:
        """Load management runs: a site limit is set."""
        return self.site_limit_kw is not None


class RuntimeSection(_Section):
    # "auto": uvloop when installed (it is a dependency on Linux and macOS), else asyncio
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"


class SiteConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EVPARK_", env_nested_delimiter="__", extra="forbid"
    )
    # the file's settings with the credentials laid over them (load_site_config sets it)
    file_settings: ClassVar[dict[str, Any] | None] = None

    site: SiteSection
    ocpp: OcppSection = Field(default_factory=OcppSection)
    http: HttpSection = Field(default_factory=HttpSection)
    storage: StorageSection = Field(default_factory=StorageSection)
    authorization: AuthorizationSection = Field(default_factory=AuthorizationSection)
    chargers: list[ChargerConfig] = Field(default_factory=list)
    slots: list[SlotConfig] = Field(default_factory=list)
    slot_timing: SlotTimingSection = Field(default_factory=SlotTimingSection)
    mqtt: MqttSection = Field(default_factory=MqttSection)
    central: CentralSection = Field(default_factory=CentralSection)
    power: PowerSection = Field(default_factory=PowerSection)
    runtime: RuntimeSection = Field(default_factory=RuntimeSection)
    diagnostics: DiagnosticsSection = Field(default_factory=DiagnosticsSection)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        file_settings = getattr(settings_cls, "file_settings", None)
        if file_settings is not None:
            sources.append(InitSettingsSource(settings_cls, file_settings))
        return tuple(sources)

    @model_validator(mode="after")
    def _cross_references(self) -> SiteConfig:
        problems = self.cross_field_problems()
        if problems:
            raise ValueError("\n".join(problems))  # one problem a line: see validation_problems
        return self

    def cross_field_problems(self) -> list[str]:
        """What the sections say of each other: unknown or duplicate ids, power limits,
        production rules."""
        problems: list[str] = []
        charger_ids = [c.id for c in self.chargers]
        problems += _duplicates("chargers (ids ignore case)", [charger_key(c) for c in charger_ids])
        problems += _duplicates("slots", [s.id for s in self.slots])
        problems += _duplicates("slots.sensor", [s.sensor for s in self.slots if s.sensor])
        problems += _duplicates(
            "slots (charger, evse)",
            [f"{s.charger}/{s.evse}" for s in self.slots if s.charger is not None],
        )
        for slot in self.slots:
            if slot.charger is not None and slot.charger not in charger_ids:
                problems.append(f"slot {slot.id!r} names unknown charger {slot.charger!r}")
        problems += self._power_problems()
        if self.site.environment == "production":
            problems += self._production_problems()
        return problems

    def _power_problems(self) -> list[str]:
        """A site limit the failsafe could break when every charger loses the edge at
        once, or circuits that name no configured charger."""
        power = self.power
        problems = _duplicates("power.circuits", [c.id for c in power.circuits])
        known = {charger_key(c.id) for c in self.chargers}
        for circuit in power.circuits:
            unknown = [c for c in circuit.chargers if charger_key(c) not in known]
            if unknown:
                problems.append(f"circuit {circuit.id!r} names unknown chargers: {unknown}")
        if power.site_limit_kw is None:
            return problems
        groups = [("power.site_limit_kw", power.site_limit_kw, self.chargers)]
        for circuit in power.circuits:
            members = {charger_key(c) for c in circuit.chargers}
            inside = [c for c in self.chargers if charger_key(c.id) in members]
            groups.append((f"circuit {circuit.id!r}", circuit.limit_kw, inside))
        for name, limit_kw, chargers in groups:
            failsafe = sum(min(power.failsafe_kw * self._evses(c.id), c.max_kw) for c in chargers)
            if failsafe > limit_kw:
                problems.append(
                    f"{name} is {limit_kw:g} kW but its {len(chargers)} chargers at "
                    f"power.failsafe_kw ({power.failsafe_kw:g} kW) draw {failsafe:g} kW when "
                    "they lose the edge: lower failsafe_kw"
                )
        if power.min_session_kw > power.site_limit_kw:
            problems.append("power.min_session_kw is more than power.site_limit_kw")
        return problems

    def _evses(self, charger_id: str) -> int:
        """EVSEs of a charger as the slots name them (at least one)."""
        return max(1, len({s.evse for s in self.slots if s.charger == charger_id}))

    def _production_problems(self) -> list[str]:
        problems: list[str] = []
        if self.ocpp.auto_register:
            problems.append(
                "ocpp.auto_register admits any charger without credentials: it is refused in "
                "production (list the chargers under [[chargers]] with a password, or approve "
                "them with `evpark chargers approve`)"
            )
        for charger in self.chargers:
            if charger.password and _PLACEHOLDER.match(charger.password):
                problems.append(f"charger {charger.id!r} has a placeholder password")
            elif not charger.password and not self.mutual_tls:
                problems.append(
                    f"charger {charger.id!r} has no password: in production every charger "
                    "needs a password (security profile 1 or 2) or a client certificate "
                    "(security profile 3: set ocpp.tls.client_ca_file)"
                )
        return problems

    @property
    def mutual_tls(self) -> bool:
        """Security profile 3: chargers show a client certificate that names them."""
        return self.ocpp.tls is not None and self.ocpp.tls.client_ca_file is not None

    @property
    def replace_connection(self) -> ReplaceConnection:
        if self.ocpp.replace_connection is not None:
            return self.ocpp.replace_connection
        return "oldest" if self.site.environment == "production" else "newest"

    def charger_setup(self, charger_id: str) -> ChargerSetup:
        """A charger's provisioning settings: its own, key by key over the site's (a
        charger not in the file, auto-registered or approved, gets the site's)."""
        site, own = self.ocpp, self.charger(charger_id)
        if own is None:
            return ChargerSetup(site.boot, site.validation, site.config, site.variables)
        return ChargerSetup(
            own.boot or site.boot,
            own.validation or site.validation,
            {**site.config, **own.config},
            {**site.variables, **own.variables},
        )

    def charger(self, charger_id: str) -> ChargerConfig | None:
        """The configured charger with this id, whatever the case of its letters."""
        key = charger_key(charger_id)
        return next((c for c in self.chargers if charger_key(c.id) == key), None)


def _duplicates(what: str, ids: list[str]) -> list[str]:
    seen: set[str] = set()
    dupes = sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
    return [f"duplicate {what}: {', '.join(dupes)}"] if dupes else []


class ConfigError(Exception):
    """The site configuration cannot be used; ``problems`` lists (field, message);
    ``partial`` holds its sections that are valid on their own, if it could be read."""

    def __init__(
        self, path: Path, problems: list[tuple[str, str]], partial: SiteConfig | None = None
    ) -> None:
        self.path = path
        self.problems = problems
        self.partial = partial
        lines = "\n".join(f"  {field}: {message}" for field, message in problems)
        super().__init__(f"{path}: {len(problems)} problem(s)\n{lines}")


def load_site_config(
    path: Path, credentials: Credentials | None = None, **overrides: Any
) -> SiteConfig:
    """Read ``path`` (TOML) with the credentials (default: ``$CREDENTIALS_DIRECTORY``'s)
    and environment overrides; raise :class:`ConfigError`."""
    if not path.is_file():
        raise ConfigError(path, [("file", "no such file")])
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)  # a syntax error is reported with its line
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(path, [("toml", str(err))]) from err
    except OSError as err:
        raise ConfigError(path, [("file", err.strerror or str(err))]) from err

    credentials = credentials or Credentials.from_environment()
    settings, secret_problems = credentials.lay_over(raw)

    class _FromFile(SiteConfig):
        file_settings = settings

    try:
        loaded = _FromFile(**overrides)
    except ValidationError as err:
        problems = validation_problems(err)
        partial, checkable = _valid_sections(settings)
        if checkable and all(field != "(config)" for field, _ in problems):
            problems += [("(config)", p) for p in partial.cross_field_problems()]
        raise ConfigError(path, secret_problems + problems, partial) from err
    if secret_problems:
        raise ConfigError(path, secret_problems, loaded)
    return loaded


# the sections the cross-field checks read: without all of them valid, they cannot run
_CROSS_CHECKED = ("site", "ocpp", "chargers", "slots", "power")


def _valid_sections(raw: dict[str, Any]) -> tuple[SiteConfig, bool]:
    """The file's sections that are valid on their own, the others at their defaults (not
    validated as a whole: for the checks that can still run, so one run reports every
    problem), and whether the cross-field checks can run on it."""
    valid: dict[str, Any] = {}
    for name, field in SiteConfig.model_fields.items():
        if name in raw and field.annotation is not None:
            with contextlib.suppress(ValidationError):
                valid[name] = TypeAdapter(field.annotation).validate_python(raw[name])
    checkable = all(name in valid for name in _CROSS_CHECKED if name in raw) and "site" in valid
    return SiteConfig.model_construct(**valid), checkable
