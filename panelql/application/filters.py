"""Filter values as the use-cases receive them (the schema's inputs convert into these)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from panelql.domain.records import Ref
from panelql.domain.status import (
    AccountStatus,
    BackupStatus,
    DnsZoneStatus,
    InvoiceStatus,
    NodeStatus,
    ServerStatus,
)
from panelql.providers.contract import Provider


@dataclass
class ProviderScope:
    """Which connections a list query touches: by connection name and/or kind."""

    providers: list[str] | None = None
    kinds: list[str] | None = None
    customer_ref: str | None = None

    def admits(self, provider: Provider) -> bool:
        if self.providers is not None and provider.name not in self.providers:
            return False
        return self.kinds is None or provider.kind in self.kinds


@dataclass
class ServerFilter(ProviderScope):
    statuses: list[ServerStatus] | None = None
    node: Ref | None = None
    owner: Ref | None = None
    search: str | None = None


@dataclass
class NodeFilter(ProviderScope):
    statuses: list[NodeStatus] | None = None
    region: str | None = None
    search: str | None = None


@dataclass
class AccountFilter(ProviderScope):
    statuses: list[AccountStatus] | None = None
    search: str | None = None


@dataclass
class BackupFilter(ProviderScope):
    statuses: list[BackupStatus] | None = None
    server: Ref | None = None
    search: str | None = None


@dataclass
class InvoiceFilter(ProviderScope):
    statuses: list[InvoiceStatus] | None = None
    overdue: bool | None = None
    customer_ids: list[str] | None = None
    search: str | None = None


@dataclass
class DnsZoneFilter(ProviderScope):
    statuses: list[DnsZoneStatus] | None = None
    search: str | None = None


def matches_text(search: str | None, values: Iterable[str | None]) -> bool:
    if not search:
        return True
    needle = search.casefold()
    return any(v is not None and needle in v.casefold() for v in values)


_DIGITS = re.compile(r"(\d+)")


# Every page sorts its whole list by these keys on every query, and ids like Catalyst's
# "cm5srv0001" take a regex each; a dashboard asks about the same ids again and again.
@functools.lru_cache(maxsize=1 << 16)
def sort_key(connection: str, upstream_id: str) -> str:
    """Stable natural order (server 9 before server 10) within each connection."""
    # isdecimal() is exactly what \d matches (Unicode Nd): an all-digit id needs no regex.
    padded = upstream_id.zfill(12) if upstream_id.isdecimal() else _DIGITS.sub(_pad, upstream_id)
    return f"{connection}\x1f{padded}"


def _pad(match: re.Match[str]) -> str:
    return match.group(1).zfill(12)
