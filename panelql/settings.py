"""Gateway settings: ``PANELQL_*`` environment variables plus a TOML file of provider connections.

Environment wins over the file. Nested values use ``__`` (``PANELQL_LIMITS__MAX_DEPTH=12``).
Credentials in the TOML file are either literals or ``{ env = "NAME" }`` references, so the file
itself can be committed without secrets. Invalid configuration raises :class:`ConfigError` with
the offending key spelled out; the CLI prints it and exits, never a traceback.
"""

from __future__ import annotations

import os
import tomllib
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

from panelql.providers.config import ConnectionConfig, Secret
from panelql.providers.registry import known_kinds
from panelql.providers.resilience import ResiliencePolicy

DEFAULT_DB = "sqlite+aiosqlite:///.panelql/panelql.db"


class ConfigError(Exception):
    """Configuration that cannot work; the message names the key."""


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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PANELQL_", env_nested_delimiter="__", extra="ignore"
    )

    config_file: Path | None = None
    database_url: str = DEFAULT_DB
    redis_url: str | None = None
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
    # "lean": providers/transport.py (a third of httpcore's CPU per upstream call); "httpx":
    # httpx's own transport, should an upstream need something the lean one hands over badly.
    upstream_transport: Literal["lean", "httpx"] = "lean"
    health_cache_seconds: float = Field(default=10.0, ge=0)
    # How the gateway follows long upstream work (installs, power transitions, backups).
    operation_poll_seconds: float = Field(default=1.0, gt=0)
    operation_timeout_seconds: float = Field(default=900.0, gt=0)
    idempotency_ttl_hours: float = Field(default=24.0, gt=0)
    keep_alive_seconds: float = Field(default=15.0, gt=0)
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
    providers: list[ProviderEntry] = Field(default_factory=list)

    def connections(self) -> list[ConnectionConfig]:
        configs = [p.to_connection(f"providers[{i}]") for i, p in enumerate(self.providers)]
        names = [c.name for c in configs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"providers: duplicate connection name(s) {', '.join(duplicates)}")
        return configs


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        path = ""
        for part in item["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        lines.append(f"{path or '(root)'}: {item['msg']}")
    return "; ".join(lines)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config_file: {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config_file: {path} is not valid TOML ({exc})") from None
    gateway = data.pop("gateway", {})
    if not isinstance(gateway, dict):
        raise ConfigError("gateway: must be a table")
    return {**gateway, **data}


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, the TOML file (if any) and explicit overrides."""
    try:
        env_only = Settings()
        path = Path(config_file) if config_file else env_only.config_file
        file_values = _read_file(path) if path else {}
        # Environment variables win over the file: re-read them on top.
        explicit_env = {k: v for k, v in env_only.model_dump().items()
                        if f"PANELQL_{k.upper()}" in os.environ}
        settings = Settings.model_validate({**file_values, **explicit_env, **overrides,
                                            "config_file": path})
        settings.connections()  # resolve env references now, so errors surface at start
        return settings
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


@lru_cache(maxsize=1)
def cached_settings() -> Settings:
    return load_settings()
