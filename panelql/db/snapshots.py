"""State of the event pipeline: last seen status per resource, and processed webhook ids.

The watcher compares each poll with :class:`Snapshots` so a restart resumes where it stopped
instead of announcing every resource again. Webhook deliveries go through
:meth:`Snapshots.ingest`, which records the event id and updates the snapshots in one
transaction: a replayed delivery finds its id taken and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from panelql.db.engine import Sessions
from panelql.db.models import StatusSnapshot, WebhookEvent

# Rows per INSERT: 5 bound values each keeps us far below SQLite's variable limit.
CHUNK = 150

Key = tuple[str, str]  # (resource_type, resource_id)


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    resource_type: str
    resource_id: str
    status: str
    raw_status: str | None = None

    @property
    def key(self) -> Key:
        return (self.resource_type, self.resource_id)


class Snapshots:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def load(self, connection: str) -> dict[Key, SnapshotRow]:
        """Every snapshot of one connection, keyed by (resource_type, resource_id)."""
        query = select(StatusSnapshot).where(StatusSnapshot.connection == connection)
        async with self.sessions() as session:
            rows = await session.scalars(query)
            return {(r.resource_type, r.resource_id): _row(r) for r in rows}

    async def find(self, connection: str, resource_type: str,
                   resource_id: str) -> SnapshotRow | None:
        async with self.sessions() as session:
            found = await session.get(StatusSnapshot, (connection, resource_type, resource_id))
            return _row(found) if found else None

    async def save(self, connection: str, upserts: Sequence[SnapshotRow],
                   deletes: Iterable[Key] = ()) -> None:
        """Write one poll's outcome atomically: changed rows in, vanished rows out."""
        gone = list(deletes)
        if not upserts and not gone:
            return
        async with self.sessions.write() as session:
            await _upsert(session, connection, upserts)
            await _delete(session, connection, gone)

    async def ingest(self, provider: str, event_id: str,
                     rows: Sequence[SnapshotRow]) -> dict[Key, str | None] | None:
        """Record a webhook delivery and its new statuses; None when ``event_id`` was seen.

        Returns each row's previous status (None when the resource had no snapshot).
        """
        try:
            async with self.sessions.write() as session:
                session.add(WebhookEvent(provider=provider, event_id=event_id,
                                         received_at=_now()))
                await session.flush()  # a replay fails here, before anything else changes
                previous = {row.key: await _status(session, provider, row.key) for row in rows}
                await _upsert(session, provider, rows)
                return previous
        except IntegrityError:
            return None


def _now() -> datetime:
    return datetime.now(UTC)


def _row(r: StatusSnapshot) -> SnapshotRow:
    return SnapshotRow(r.resource_type, r.resource_id, r.status, r.raw_status)


async def _status(session: AsyncSession, connection: str, key: Key) -> str | None:
    found = await session.get(StatusSnapshot, (connection, *key))
    return found.status if found else None


async def _upsert(session: AsyncSession, connection: str, rows: Sequence[SnapshotRow]) -> None:
    now = _now()
    for start in range(0, len(rows), CHUNK):
        values = [{"connection": connection, "resource_type": r.resource_type,
                   "resource_id": r.resource_id, "status": r.status,
                   "raw_status": r.raw_status, "observed_at": now}
                  for r in rows[start:start + CHUNK]]
        await session.execute(_upsert_statement(session, values))


def _upsert_statement(session: AsyncSession, values: list[dict[str, Any]]) -> Any:
    # Both dialects we support spell "INSERT … ON CONFLICT DO UPDATE" the same way in
    # SQLAlchemy; the generic insert has no conflict clause, hence the pick by dialect.
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(StatusSnapshot).values(values)
    return statement.on_conflict_do_update(
        index_elements=["connection", "resource_type", "resource_id"],
        set_={"status": statement.excluded.status, "raw_status": statement.excluded.raw_status,
              "observed_at": statement.excluded.observed_at},
    )


async def _delete(session: AsyncSession, connection: str, keys: list[Key]) -> None:
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start:start + CHUNK]
        await session.execute(delete(StatusSnapshot).where(
            StatusSnapshot.connection == connection,
            tuple_(StatusSnapshot.resource_type, StatusSnapshot.resource_id).in_(chunk)))
