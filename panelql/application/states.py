"""The gateway's own wrong-state answer, raised before the upstream is called."""

from __future__ import annotations

from panelql.application.errors import StateConflict
from panelql.domain.status import ServerStatus


def conflict(action: str, status: ServerStatus | None) -> StateConflict:
    current = status.value if status else "DELETED"
    return StateConflict(f"cannot {action} a server that is {current}", currentStatus=current)
