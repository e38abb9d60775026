"""Normalised status enums and the one helper every adapter uses to map raw upstream values.

Each adapter keeps a plain dict from its raw values to these enums. Unmapped values become
UNKNOWN (never an exception) and are logged once per value, so a new upstream state shows up in
the logs instead of breaking a dashboard.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from typing import TypeVar

log = logging.getLogger("panelql.domain.status")


class ServerStatus(enum.Enum):
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    STARTING = "STARTING"
    STOPPING = "STOPPING"
    REBOOTING = "REBOOTING"
    PAUSED = "PAUSED"
    SUSPENDED = "SUSPENDED"
    INSTALLING = "INSTALLING"
    RESTORING = "RESTORING"
    MIGRATING = "MIGRATING"
    ERROR = "ERROR"
    DELETING = "DELETING"
    UNKNOWN = "UNKNOWN"


class NodeStatus(enum.Enum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"
    MAINTENANCE = "MAINTENANCE"
    UNKNOWN = "UNKNOWN"


class AccountStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    PENDING = "PENDING"
    TERMINATED = "TERMINATED"
    UNKNOWN = "UNKNOWN"


class BackupStatus(enum.Enum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    RESTORING = "RESTORING"
    UNKNOWN = "UNKNOWN"


class InvoiceStatus(enum.Enum):
    DRAFT = "DRAFT"
    OPEN = "OPEN"
    PAID = "PAID"
    # Paid, then some (PARTIALLY_REFUNDED) or all (REFUNDED) of the money given back; the raw
    # status says how the provider holds it (PayPal has statuses for it, Stripe stays "paid").
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"
    UNCOLLECTIBLE = "UNCOLLECTIBLE"
    VOID = "VOID"


class DnsZoneStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    PENDING = "PENDING"
    INACTIVE = "INACTIVE"
    UNKNOWN = "UNKNOWN"


# Statuses that will change on their own soon; the watcher polls faster while any exist.
TRANSITIONAL_SERVER_STATUSES = frozenset(
    {
        ServerStatus.STARTING,
        ServerStatus.STOPPING,
        ServerStatus.REBOOTING,
        ServerStatus.INSTALLING,
        ServerStatus.RESTORING,
        ServerStatus.MIGRATING,
        ServerStatus.DELETING,
    }
)

E = TypeVar("E", bound=enum.Enum)
_reported: set[tuple[str, str]] = set()


def map_status(table: Mapping[str, E], raw: str | None, unknown: E, *, source: str) -> E:
    """Look ``raw`` up in ``table``; unmapped values give ``unknown`` and are logged once."""
    if raw is None:
        return unknown
    found = table.get(raw)
    if found is not None:
        return found
    if (source, raw) not in _reported:
        _reported.add((source, raw))
        log.warning("unmapped upstream status", extra={"source": source, "raw_status": raw})
    return unknown
