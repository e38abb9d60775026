"""Gateway settings: ``PANELQL_*`` environment variables plus a TOML file of provider connections.

Environment wins over the file. Nested values use ``__`` (``PANELQL_LIMITS__MAX_DEPTH=12``).
Credentials in the TOML file are either literals or ``{ env = "NAME" }`` references, so the file
itself can be committed without secrets. Invalid configuration raises :class:`ConfigError` with
the offending key spelled out; the CLI prints it and exits, never a traceback.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
import tomllib
import typing
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from panelql.providers.config import ConnectionConfig, Secret
from panelql.providers.registry import known_kinds, provider_class
from panelql.providers.resilience import ResiliencePolicy

DEFAULT_DB = "sqlite+aiosqlite:///.panelql/panelql.db"


class ConfigError(Exception):
    """Configuration that cannot work. Every problem found is in ``problems``, each naming its
    key as a dotted path (``gateway.port``, ``providers[1].kind``)."""

    def __init__(self, *problems: str) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


class EnvRef(BaseModel):
    env: str


class ProviderEntry(BaseModel):
    model_config = {"extra": "forbid"}

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    kind: str
    base_url: str = Field(pattern=r"^https?://")
    credentials: dict[str, str | EnvRef] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=25.0, gt=0, le=600)
    region: str | None = None

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in known_kinds():
            raise ValueError(f"unknown provider kind {value!r}; known: {', '.join(known_kinds())}")
        return value

    def to_connection(self, where: str) -> ConnectionConfig:
        secrets: dict[str, Secret] = {}
        for key, value in self.credentials.items():
            if isinstance(value, EnvRef):
                resolved = os.environ.get(value.env)
                if resolved is None:
                    raise ConfigError(
                        f"{where}.credentials.{key}: environment variable {value.env} is not set"
                    )
                value = resolved
            secrets[key] = Secret(value)
        return ConnectionConfig(
            name=self.name, kind=self.kind, base_url=self.base_url, credentials=secrets,
            options=dict(self.options), timeout_seconds=self.timeout_seconds, region=self.region,
        )


class Limits(BaseModel):
    max_depth: int = Field(default=12, ge=2)
    max_aliases: int = Field(default=30, ge=1)
    max_page_size: int = Field(default=1000, ge=1)
    default_page_size: int = Field(default=50, ge=1)
    # Estimated objects per operation (panelql.schema.cost) and lexical tokens per document.
    max_cost: int = Field(default=50_000, ge=1)
    max_tokens: int = Field(default=2000, ge=100)
    # Fields a document expands to with each fragment inlined at every spread (schema/shape.py):
    # bounds fragment bombs, whose leaves may cost nothing in the cost model.
    max_fields: int = Field(default=10_000, ge=100)


class WatcherSettings(BaseModel):
    """How the watcher polls each connection for changes made behind the gateway's back."""

    enabled: bool = True
    # While anything is transitional or someone subscribes to the connection's topics.
    fast_seconds: float = Field(default=2.0, gt=0)
    slow_seconds: float = Field(default=30.0, gt=0)
    # A replica that dies stops renewing; another takes the connection over after this long.
    lease_seconds: float = Field(default=15.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> WatcherSettings:
        if self.slow_seconds < self.fast_seconds:
            raise ValueError("slow_seconds must be at least fast_seconds")
        if self.lease_seconds <= self.fast_seconds:
            raise ValueError("lease_seconds must exceed fast_seconds, or leases lapse between "
                             "renewals")
        return self


class AutomationSettings(BaseModel):
    """Billing-driven automation (application/automation): how often the scheduled pass looks
    at invoices ("N days overdue", terminations due, retries), and how failed steps retry."""

    enabled: bool = True
    pass_seconds: float = Field(default=60.0, gt=0)
    # A failed step waits retry_base_seconds, then twice that, … up to retry_max_seconds, and
    # is left FAILED (visible in automationRuns) after max_attempts.
    retry_base_seconds: float = Field(default=5.0, gt=0)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    max_attempts: int = Field(default=8, ge=1, le=100)
    # A replica that dies mid-run stops renewing; another resumes the run after this long.
    lease_seconds: float = Field(default=30.0, gt=0)


class ResilienceSettings(BaseModel):
    """Per-connection retries, circuit breaker and concurrency limit (providers/resilience.py).
    Writes are only retried when the request never left the gateway (connect errors)."""

    retries: int = Field(default=2, ge=0, le=10)
    backoff_base_seconds: float = Field(default=0.1, ge=0)
    backoff_cap_seconds: float = Field(default=2.0, ge=0)
    # A longer Retry-After is not waited for: the client gets RATE_LIMITED with retryAfter.
    retry_after_cap_seconds: float = Field(default=5.0, ge=0)
    breaker_threshold: int = Field(default=5, ge=0)  # 0: no circuit breaker
    breaker_cooldown_seconds: float = Field(default=15.0, gt=0)
    max_concurrency: int = Field(default=16, ge=0)  # 0: unlimited

    def policy(self) -> ResiliencePolicy:
        return ResiliencePolicy(**self.model_dump())


# The drivers PanelQL runs on, with the URL a user most likely meant for each backend.
_DRIVERS = {"sqlite": ("aiosqlite", "sqlite+aiosqlite:///path/to/panelql.db"),
            "postgresql": ("asyncpg", "postgresql+asyncpg://user:password@host/dbname")}


def check_database_url(url: str) -> str:
    """Refuse, with a hint, URLs the gateway cannot open: other databases, missing async
    drivers, and SQLite files in folders that do not exist (a typo would otherwise create a
    fresh, empty database somewhere unexpected)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError("not a database URL; use sqlite+aiosqlite:///path or "
                         "postgresql+asyncpg://user:password@host/dbname") from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend not in _DRIVERS:
        raise ValueError(f"unsupported database {backend!r}; PanelQL runs on SQLite "
                         f"({_DRIVERS['sqlite'][1]}) or PostgreSQL ({_DRIVERS['postgresql'][1]})")
    wanted, example = _DRIVERS[backend]
    if driver != wanted:
        raise ValueError(f"the {backend} driver must be {wanted} (e.g. {example})")
    if importlib.util.find_spec(wanted) is None:
        raise ValueError(f"the {wanted} package is not installed (pip install {wanted})")
    if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).parent
        if not folder.is_dir() and url != DEFAULT_DB:
            raise ValueError(f"folder {folder} does not exist; create it first (only the "
                             "default .panelql/ folder is created automatically)")
    return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PANELQL_", env_nested_delimiter="__", extra="ignore"
    )

    config_file: Path | None = None
    database_url: str = DEFAULT_DB
    redis_url: str | None = None
    # Names this deployment's Redis channel and keys (events, leases, rate limits), so two
    # deployments on one Redis never share them; Redis pub/sub ignores the database number.
    # Default: derived from the database (see deployment_name), so replicas of one database
    # agree without configuration and another database never collides.
    deployment: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    graphiql: bool = True
    introspection: bool = True
    log_level: str = "info"
    # json: one JSON object per line with request_id (for log shippers); text: for humans.
    log_format: Literal["text", "json"] = "text"
    # Fernet key(s) encrypting credentials stored in the database; comma-separated, newest
    # first, so a key can be rotated (see panelql.secrets).
    secret_key: SecretStr | None = None
    metrics: bool = True  # Prometheus text at /metrics
    tracing: bool = False  # OpenTelemetry spans; needs the `otel` extra (pip install panelql[otel])
    auto_migrate: bool = True
    # Dataloaders can be switched off to measure what they save (bench/); never in production.
    dataloaders: bool = True
    # The lean execution path for plain fields (schema/lean_execution.py); off, every field goes
    # through strawberry's resolvers and graphql-core's completion (same answers, more CPU).
    lean_execution: bool = True
    # After startup, gc.freeze() what startup built (schema, adapters, imported modules): it
    # lives as long as the process, and left to the cyclic collector every large answer's
    # collections walked it again (a fifth of a 1,000-server query's CPU). Tests that start
    # many gateways in one process turn it off (each start would collect the whole heap).
    freeze_heap: bool = True
    # "lean": providers/transport.py (a third of httpcore's CPU per upstream call); "httpx":
    # httpx's own transport, should an upstream need something the lean one hands over badly.
    upstream_transport: Literal["lean", "httpx"] = "lean"
    health_cache_seconds: float = Field(default=10.0, ge=0)
    # How the gateway follows long upstream work (installs, power transitions, backups).
    operation_poll_seconds: float = Field(default=1.0, gt=0)
    operation_timeout_seconds: float = Field(default=900.0, gt=0)
    idempotency_ttl_hours: float = Field(default=24.0, gt=0)
    # A convergent action (provisionService) still marked running after this long died with
    # its process (a crash, kill -9): the next retry with its key runs it again and finishes
    # the job. Other actions never are: a blind second run could apply a write twice.
    idempotency_takeover_seconds: float = Field(default=300.0, ge=0)
    keep_alive_seconds: float = Field(default=15.0, gt=0)
    # Overall deadline of one query: upstream calls get what is left of it, and a panel still
    # busy when it passes becomes its per-panel error beside the others' data (0: none).
    request_timeout_seconds: float = Field(default=30.0, ge=0)
    # How often an open subscription (WebSocket or SSE) looks its API key and customer scope
    # up again: a revocation or an unlink reaches it within this long (plus the key cache's
    # 5 s on other replicas). Every WebSocket operation checks at once regardless.
    connection_recheck_seconds: float = Field(default=2.0, gt=0)
    # Pages on other origins that may open subscription WebSockets (browsers send Origin; the
    # default admits only pages served from the gateway's own origin). "*" admits any page,
    # file:// pages included (Origin "null"). PanelQL authenticates with API keys, never
    # cookies, so a foreign page still needs a key; list origins anyway where you can.
    ws_allowed_origins: list[str] = Field(default_factory=list)
    # Every request needs an API key unless this is switched off (local experiments only).
    auth_required: bool = True
    default_rate_limit_per_minute: int | None = Field(default=1200, ge=1)
    limits: Limits = Field(default_factory=Limits)
    watcher: WatcherSettings = Field(default_factory=WatcherSettings)
    resilience: ResilienceSettings = Field(default_factory=ResilienceSettings)
    automation: AutomationSettings = Field(default_factory=AutomationSettings)
    providers: list[ProviderEntry] = Field(default_factory=list)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return check_database_url(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @property
    def deployment_name(self) -> str:
        return self.deployment or deployment_from_database(self.database_url)

    @property
    def redis_prefix(self) -> str:
        """Every Redis key and channel of this deployment starts with this."""
        return f"panelql:{self.deployment_name}:"

    def connections(self) -> list[ConnectionConfig]:
        problems: list[str] = []
        configs: list[ConnectionConfig] = []
        for i, entry in enumerate(self.providers):
            try:
                config = entry.to_connection(f"providers[{i}]")
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
            try:  # per-kind checks of credentials and options (e.g. nextpanel's new shape)
                provider_class(config.kind).validate_config(config)
            except ValueError as exc:
                problems.append(f"providers[{i}] ({config.name}): {exc}")
                continue
            configs.append(config)
        names = [c.name for c in configs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            problems.append(f"providers: duplicate connection name(s) {', '.join(duplicates)}")
        if problems:
            raise ConfigError(*problems)
        return configs


def deployment_from_database(url: str) -> str:
    """A short stable name for the database ``url`` points at, without its credentials: the
    same database reached with another user, password or driver gives the same name."""
    try:
        parsed = make_url(url)
    except Exception:  # not a URL SQLAlchemy understands; still stable, never shown
        identity = url
    else:
        database = parsed.database or ""
        if parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:"):
            database = str(Path(database).resolve())
        identity = "|".join((parsed.get_backend_name(), parsed.host or "",
                             str(parsed.port or ""), database))
    return "db-" + hashlib.sha256(identity.encode()).hexdigest()[:12]


def _dotted(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _describe(error: ValidationError, origin: Mapping[str, str],
              known: Sequence[str] = ()) -> list[str]:
    """One line per problem; a top-level key says where it came from (``gateway.port`` in the
    file, ``PANELQL_PORT`` in the environment). Keys already reported as unknown (``known``)
    are not reported again as pydantic's "extra inputs"."""
    lines = []
    reported = {problem.split(":")[0] for problem in known}
    for item in error.errors():
        loc = item["loc"]
        path = _dotted(loc)
        if loc and isinstance(loc[0], str) and loc[0] in origin:
            path = origin[loc[0]] + path[len(loc[0]):]
        if item["type"] == "extra_forbidden" and path in reported:
            continue
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{path or '(root)'}: {message}")
    return lines


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The settings model a field holds directly or as list items (``list[ProviderEntry]``)."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _unknown_keys(values: Mapping[str, Any], model: type[BaseModel], path: str) -> list[str]:
    """Keys of the file that no setting reads, with the closest known name. Free-form tables
    (a connection's credentials and options) are not walked."""
    problems = []
    fields = model.model_fields
    for key, value in values.items():
        where = f"{path}.{key}" if path else key
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{where}: unknown key{hint}")
            continue
        nested = _nested_model(fields[key].annotation)
        if nested is None or nested is EnvRef:
            continue
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            if isinstance(item, dict):
                sub = f"{where}[{i}]" if isinstance(value, list) else where
                problems.extend(_unknown_keys(item, nested, sub))
    return problems


_TABLES = ("gateway",)  # the file's [gateway] table holds the top-level settings


def _read_file(path: Path) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """The file's values flattened for :class:`Settings`, the dotted name each top-level key
    has in the file, and the file's unknown keys (reported with every other problem)."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config_file: {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config_file: {path} is not valid TOML ({exc})") from None
    gateway = data.pop("gateway", {})
    if not isinstance(gateway, dict):
        raise ConfigError("gateway: must be a table")
    problems = _unknown_keys(gateway, Settings, "gateway")
    for key, value in data.items():
        if key not in Settings.model_fields and isinstance(value, dict):
            close = difflib.get_close_matches(key, [*_TABLES, *Settings.model_fields], n=1)
            hint = f" (did you mean [{close[0]}]?)" if close else ""
            problems.append(f"[{key}]: unknown table{hint}")
        else:
            problems.extend(_unknown_keys({key: value}, Settings, ""))
    origin = {key: f"gateway.{key}" for key in gateway}
    return {**gateway, **data}, origin, problems


def config_warnings(settings: Settings) -> list[str]:
    """Things that work but should not stay: secrets written into the file itself."""
    if settings.config_file is None:
        return []
    try:
        data, _, _ = _read_file(settings.config_file)
    except ConfigError:
        return []
    warnings = []
    for i, entry in enumerate(data.get("providers") or []):
        for key, value in (entry.get("credentials") or {}).items():
            if isinstance(value, str):
                warnings.append(f"providers[{i}].credentials.{key}: a literal secret in the file; "
                                f'use {{ env = "NAME" }} and set NAME in the environment')
    if isinstance(data.get("secret_key"), str):
        warnings.append("gateway.secret_key: a literal secret in the file; set "
                        "PANELQL_SECRET_KEY in the environment instead")
    for key in ("database_url", "redis_url"):
        value = data.get(key)
        if isinstance(value, str) and _has_password(value):
            warnings.append(f"gateway.{key}: a password in the file; set "
                            f"PANELQL_{key.upper()} in the environment instead")
    return warnings


def _has_password(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        return bool(urlsplit(url).password)
    except ValueError:
        return False


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, the TOML file (if any) and explicit overrides."""
    env_names = {key: f"PANELQL_{key.upper()}" for key in Settings.model_fields}
    try:
        env_only = Settings()
    except ValidationError as exc:
        raise ConfigError(*_describe(exc, env_names)) from None
    path = Path(config_file) if config_file else env_only.config_file
    file_values, origin, problems = _read_file(path) if path else ({}, {}, [])
    # Environment variables win over the file: re-read them on top.
    explicit_env = {k: v for k, v in env_only.model_dump().items() if env_names[k] in os.environ}
    origin = {**origin, **{k: env_names[k] for k in explicit_env}}
    try:
        settings = Settings.model_validate({**file_values, **explicit_env, **overrides,
                                            "config_file": path})
    except ValidationError as exc:
        raise ConfigError(*problems, *_describe(exc, origin, problems)) from None
    try:
        settings.connections()  # resolve env references now, so errors surface at start
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        raise ConfigError(*problems)
    return settings


@lru_cache(maxsize=1)
def cached_settings() -> Settings:
    return load_settings()
