"""The database side of :class:`panelql.providers.ledger.AccountLedger`.

Slot counts change only through single conditional UPDATEs (``used = used + 1 WHERE used <
capacity``). SQLite serialises writers and PostgreSQL re-checks the WHERE clause on the row it
locked, so of two concurrent reservations for the last slot exactly one matches a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from panelql.db.engine import Sessions
from panelql.db.models import AccountSlotCount, LedgerAccount
from panelql.providers.ledger import LedgerEntry


class DatabaseLedger:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def _ensure(self, connection: str, baseline: int) -> None:
        """Create the counter at ``baseline``, or shift it when the option changed."""
        try:
            async with self.sessions.write() as session:
                row = await session.get(AccountSlotCount, connection)
                if row is None:
                    session.add(AccountSlotCount(connection=connection, baseline=baseline,
                                                 used=baseline, updated_at=datetime.now(UTC)))
                    return
                if row.baseline == baseline:
                    return
                # Conditional on the old baseline, so two replicas shift it only once.
                await session.execute(update(AccountSlotCount).where(
                    AccountSlotCount.connection == connection,
                    AccountSlotCount.baseline == row.baseline,
                ).values(used=AccountSlotCount.used + (baseline - row.baseline),
                         baseline=baseline, updated_at=datetime.now(UTC)))
        except IntegrityError:  # a concurrent first use created the row: nothing to do
            return

    async def used(self, connection: str, baseline: int) -> int:
        await self._ensure(connection, baseline)
        async with self.sessions() as session:
            value = await session.scalar(select(AccountSlotCount.used).where(
                AccountSlotCount.connection == connection))
            return max(0, int(value or 0))

    async def reserve(self, connection: str, capacity: int, baseline: int) -> bool:
        await self._ensure(connection, baseline)
        async with self.sessions.write() as session:
            result = await session.execute(update(AccountSlotCount).where(
                AccountSlotCount.connection == connection, AccountSlotCount.used < capacity,
            ).values(used=AccountSlotCount.used + 1, updated_at=datetime.now(UTC)))
            return bool(getattr(result, "rowcount", 0))

    async def release(self, connection: str, baseline: int) -> None:
        await self._ensure(connection, baseline)
        async with self.sessions.write() as session:
            await session.execute(update(AccountSlotCount).where(
                AccountSlotCount.connection == connection, AccountSlotCount.used > 0,
            ).values(used=AccountSlotCount.used - 1, updated_at=datetime.now(UTC)))

    async def record(self, connection: str, entry: LedgerEntry) -> None:
        async with self.sessions.write() as session:
            await session.merge(LedgerAccount(
                connection=connection, account_id=entry.account_id, username=entry.username,
                email=entry.email, external_ref=entry.external_ref, status=entry.status,
                suspension_reason=entry.suspension_reason,
                created_at=entry.created_at or datetime.now(UTC)))

    async def entries(self, connection: str,
                      ids: Sequence[str] | None = None) -> list[LedgerEntry]:
        query = select(LedgerAccount).where(LedgerAccount.connection == connection)
        if ids is not None:
            query = query.where(LedgerAccount.account_id.in_(list(ids)))
        async with self.sessions() as session:
            rows = await session.scalars(query.order_by(LedgerAccount.created_at,
                                                        LedgerAccount.account_id))
            return [LedgerEntry(r.account_id, r.username, r.email, r.external_ref, r.status,
                                r.suspension_reason, r.created_at) for r in rows]

    async def set_status(self, connection: str, account_id: str, status: str,
                         reason: str | None) -> None:
        async with self.sessions.write() as session:
            await session.execute(update(LedgerAccount).where(
                LedgerAccount.connection == connection, LedgerAccount.account_id == account_id,
            ).values(status=status, suspension_reason=reason))

    async def forget(self, connection: str, account_id: str, baseline: int) -> bool:
        await self._ensure(connection, baseline)
        async with self.sessions.write() as session:
            result = await session.execute(delete(LedgerAccount).where(
                LedgerAccount.connection == connection, LedgerAccount.account_id == account_id))
            if not getattr(result, "rowcount", 0):
                return False
            # In the same transaction: the slot is freed exactly when the row goes.
            await session.execute(update(AccountSlotCount).where(
                AccountSlotCount.connection == connection, AccountSlotCount.used > 0,
            ).values(used=AccountSlotCount.used - 1, updated_at=datetime.now(UTC)))
            return True
