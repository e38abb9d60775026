"""The gateway's own record of accounts on panels that cannot list them (NextPanel).

A NextPanel server answers for one account at a time (``GET /api/v1/billing/accounts/{id}``)
and has no list or count route, so the gateway keeps what it created there: which accounts, and
how many slots of the server's capacity are taken. The adapter only sees this protocol; the
application attaches the database-backed implementation (``panelql.db.account_ledger``), so
``providers/`` never imports the database.

``baseline`` is the operator's ``current_accounts`` option: accounts that existed on the server
before the gateway took over. ``used = baseline + accounts created through the gateway - accounts
deleted through it``; changing the option later shifts ``used`` by the difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    account_id: str
    username: str
    email: str | None
    external_ref: str | None
    status: str  # "active" | "suspended": what the gateway last did to it
    suspension_reason: str | None = None
    created_at: datetime | None = None


class AccountLedger(Protocol):
    async def used(self, connection: str, baseline: int) -> int:
        """Slots taken on the connection's server."""
        ...

    async def reserve(self, connection: str, capacity: int, baseline: int) -> bool:
        """Take one slot if one is free, atomically (two writers never both get the last)."""
        ...

    async def release(self, connection: str, baseline: int) -> None:
        """Give back a slot taken by :meth:`reserve` whose account was not created."""
        ...

    async def record(self, connection: str, entry: LedgerEntry) -> None: ...

    async def entries(self, connection: str,
                      ids: Sequence[str] | None = None) -> list[LedgerEntry]: ...

    async def set_status(self, connection: str, account_id: str, status: str,
                         reason: str | None) -> None: ...

    async def forget(self, connection: str, account_id: str, baseline: int) -> bool:
        """Drop the account and free its slot; False when it was not recorded."""
        ...


@runtime_checkable
class LedgerUser(Protocol):
    """An adapter that needs the ledger; the gateway attaches it once at start."""

    def attach_ledger(self, ledger: AccountLedger) -> None: ...
