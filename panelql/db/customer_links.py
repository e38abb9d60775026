"""Customer links: a billing system's customer reference (``whmcs:42``) ↔ upstream resources."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from panelql.db.engine import Sessions
from panelql.db.models import CustomerLink
from panelql.domain.state import Link


class CustomerLinks:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def link(self, link: Link) -> tuple[Link, bool]:
        """Create the link; returns (link, created). A resource belongs to one customer only:
        linking it to another raises ValueError naming the current owner."""
        existing = await self.owner_of(link.connection, link.resource_type, link.resource_id)
        if existing is not None:
            if existing.customer_ref != link.customer_ref:
                raise ValueError(existing.customer_ref)
            return existing, False
        try:
            async with self.sessions.write() as session:
                session.add(CustomerLink(
                    customer_ref=link.customer_ref, connection=link.connection,
                    resource_type=link.resource_type, resource_id=link.resource_id,
                    created_at=datetime.now(UTC)))
        except IntegrityError:  # a concurrent identical link won the race
            return await self.link(link)
        return link, True

    async def unlink(self, link: Link) -> bool:
        async with self.sessions.write() as session:
            result = await session.execute(delete(CustomerLink).where(
                CustomerLink.customer_ref == link.customer_ref,
                CustomerLink.connection == link.connection,
                CustomerLink.resource_type == link.resource_type,
                CustomerLink.resource_id == link.resource_id))
            return bool(getattr(result, "rowcount", 0))

    async def of_customer(self, customer_ref: str) -> list[Link]:
        async with self.sessions() as session:
            rows = await session.scalars(select(CustomerLink).where(
                CustomerLink.customer_ref == customer_ref).order_by(CustomerLink.id))
            return [_link(r) for r in rows]

    async def of_connection(self, connection: str, resource_types: tuple[str, ...]
                            ) -> list[Link]:
        """Every link to resources of these types on one connection."""
        async with self.sessions() as session:
            rows = await session.scalars(select(CustomerLink).where(
                CustomerLink.connection == connection,
                CustomerLink.resource_type.in_(resource_types)).order_by(CustomerLink.id))
            return [_link(r) for r in rows]

    async def owner_of(self, connection: str, resource_type: str, resource_id: str
                       ) -> Link | None:
        async with self.sessions() as session:
            row = await session.scalar(select(CustomerLink).where(
                CustomerLink.connection == connection,
                CustomerLink.resource_type == resource_type,
                CustomerLink.resource_id == resource_id))
            return _link(row) if row else None


def _link(row: CustomerLink) -> Link:
    return Link(row.customer_ref, row.connection, row.resource_type, row.resource_id,
                row.created_at)
