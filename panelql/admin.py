"""What the operator commands do, apart from argument parsing and printing (that is cli.py).

Every function opens the gateway's database the way the gateway does (migrating first when
``auto_migrate`` is on, so a fresh install needs no separate step) and closes it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from panelql.db.api_keys import ApiKeys
from panelql.db.connections import ProviderConnections, load_connections
from panelql.db.engine import Sessions, create_engine, session_factory
from panelql.db.migrate import upgrade
from panelql.db.repositories import Audit
from panelql.domain.state import AuditRow, KeyInfo
from panelql.providers.config import ConnectionConfig, Secret
from panelql.providers.errors import AuthenticationFailed, ProviderError
from panelql.providers.http import ClientFactory
from panelql.providers.registry import build_provider, provider_class
from panelql.secrets import CredentialCipher
from panelql.settings import Settings

DEMO_KEY_FILE = Path(".panelql/demo-api-key")


class CliError(Exception):
    """A user error: printed as one line, exit code ``code``, never a traceback."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@contextlib.asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[Sessions]:
    if settings.auto_migrate:
        await upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


def cipher_for(settings: Settings) -> CredentialCipher:
    return CredentialCipher.from_setting(
        settings.secret_key.get_secret_value() if settings.secret_key else None)


# -- keys ---------------------------------------------------------------------------------------

def parse_expiry(text: str | None, now: datetime | None = None) -> datetime | None:
    """``30d``, ``12h``, ``90m``, or an ISO date/datetime (UTC when no zone is given)."""
    if not text:
        return None
    now = now or datetime.now(UTC)
    units = {"d": "days", "h": "hours", "m": "minutes"}
    if text[-1:] in units and text[:-1].isdigit():
        return now + timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--expires: {text!r} is neither a duration (30d, 12h, 90m) nor an ISO "
                       "date (2026-01-31)", 2) from None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    if value <= now:
        raise CliError("--expires: that moment has passed", 2)
    return value


async def create_key(settings: Settings, **options: Any) -> tuple[str, KeyInfo]:
    async with database(settings) as sessions:
        return await ApiKeys(sessions).create(**options)


async def list_keys(settings: Settings) -> list[KeyInfo]:
    async with database(settings) as sessions:
        return await ApiKeys(sessions).list()


async def revoke_key(settings: Settings, key_id: int) -> KeyInfo:
    async with database(settings) as sessions:
        info = await ApiKeys(sessions).revoke(key_id)
    if info is None:
        raise CliError(f"no API key with id {key_id} (see `panelql keys list`)")
    return info


async def ensure_demo_key(settings: Settings, path: Path = DEMO_KEY_FILE) -> tuple[str, bool]:
    """The demo's admin key: the one in ``path`` while it still works, else a new one written
    there (mode 0600). Returns (key, created)."""
    async with database(settings) as sessions:
        keys = ApiKeys(sessions)
        if path.exists():
            raw = path.read_text().strip()
            found = await keys.find(raw) if raw else None
            if found is not None and found.active and "admin" in found.scopes:
                return raw, False
        raw, _ = await keys.create(name="demo-admin", scopes=["admin"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(raw + "\n")
    os.chmod(path, 0o600)
    return raw, True


# -- provider connections -----------------------------------------------------------------------

@dataclass(frozen=True)
class Listed:
    name: str
    kind: str
    base_url: str
    source: str  # "config" | "database"
    region: str | None


async def list_connections(settings: Settings) -> list[Listed]:
    rows = [Listed(c.name, c.kind, c.base_url, "config", c.region)
            for c in settings.connections()]
    async with database(settings) as sessions:
        rows += [Listed(s.name, s.kind, s.base_url, "database", s.region)
                 for s in await ProviderConnections(sessions).list_all()]
    return rows


async def add_connection(settings: Settings, *, name: str, kind: str, base_url: str,
                         credentials: dict[str, str], options: dict[str, Any],
                         region: str | None, timeout_seconds: float) -> None:
    cipher = cipher_for(settings)  # refuse before touching the database
    if name in {c.name for c in settings.connections()}:
        raise CliError(f"{name!r} is a connection in the config file already; pick another name")
    try:  # the kind's own checks (credential names, options) before anything is stored
        provider_class(kind).validate_config(ConnectionConfig(
            name=name, kind=kind, base_url=base_url,
            credentials={k: Secret(v) for k, v in credentials.items()}, options=dict(options),
            timeout_seconds=timeout_seconds, region=region))
    except ValueError as exc:
        raise CliError(f"{name}: {exc}") from None
    async with database(settings) as sessions:
        await ProviderConnections(sessions).add(
            name=name, kind=kind, base_url=base_url, credentials=credentials,
            encrypt=cipher.encrypt, options=options, region=region,
            timeout_seconds=timeout_seconds)


async def remove_connection(settings: Settings, name: str) -> None:
    async with database(settings) as sessions:
        removed = await ProviderConnections(sessions).remove(name)
    if not removed:
        configured = name in {c.name for c in settings.connections()}
        raise CliError(f"{name!r} is in the config file; edit the file to remove it" if configured
                       else f"no stored connection named {name!r} (see `panelql providers list`)")


async def rotate_secrets(settings: Settings) -> int:
    cipher = cipher_for(settings)
    async with database(settings) as sessions:
        return await ProviderConnections(sessions).rotate(cipher.rotate)


async def all_connections(settings: Settings) -> list[ConnectionConfig]:
    configs = settings.connections()
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    async with database(settings) as sessions:
        configs += await load_connections(sessions, secret, {c.name for c in configs})
    return configs


@dataclass(frozen=True)
class HealthResult:
    name: str
    kind: str
    ok: bool
    latency_ms: float
    auth: str  # "ok" | "rejected" | "unknown"
    error: str | None = None


async def check_connection(config: ConnectionConfig, timeout: float) -> HealthResult:
    """Build the adapter and call check_health once (no retries: the answer should be direct)."""
    clients = ClientFactory()
    started = time.perf_counter()

    def result(ok: bool, auth: str, error: str | None = None) -> HealthResult:
        return HealthResult(config.name, config.kind, ok,
                            (time.perf_counter() - started) * 1000, auth, error)

    try:
        adapter = build_provider(config, clients.for_connection(config.name))
        try:
            await asyncio.wait_for(adapter.check_health(), timeout)
        finally:
            await adapter.aclose()
    except AuthenticationFailed as exc:
        return result(False, "rejected", f"{exc.code}: {exc.message}")
    except ProviderError as exc:
        return result(False, "unknown", f"{exc.code}: {exc.message}")
    except TimeoutError:
        return result(False, "unknown", f"no answer within {timeout:g}s")
    except (KeyError, ValueError) as exc:  # a missing credential or bad option at build time
        return result(False, "unknown", f"configuration: {exc}")
    finally:
        await clients.aclose()
    return result(True, "ok")


async def check_connections(configs: list[ConnectionConfig], timeout: float,
                           on_result: Callable[[HealthResult], None]) -> list[HealthResult]:
    """Check every connection concurrently, reporting each as soon as it answers."""
    async def one(config: ConnectionConfig) -> HealthResult:
        outcome = await check_connection(config, timeout)
        on_result(outcome)
        return outcome

    return list(await asyncio.gather(*(one(c) for c in configs)))


# -- audit log ----------------------------------------------------------------------------------

async def audit_tail(settings: Settings, count: int, *, follow: bool, interval: float,
                     action: str | None, emit: Callable[[AuditRow], None]) -> None:
    async with database(settings) as sessions:
        audit = Audit(sessions)
        rows = await audit.search(limit=count, action=action)
        for row in reversed(rows):
            emit(row)
        last = rows[0].id if rows else 0
        while follow:
            await asyncio.sleep(interval)
            fresh = [r for r in await audit.search(limit=500, action=action) if r.id > last]
            for row in reversed(fresh):
                emit(row)
            last = max([last, *(r.id for r in fresh)])
