"""NextPanel raw values → normalised enums.

The seed names no account states, so these are the values we assume NextPanel reports (see
docs/providers/nextpanel.md). Server health is two booleans, ``is_active`` (an admin switch) and
``is_online`` (the last health check); the adapter folds them into one raw word first.
"""

from __future__ import annotations

from panelql.domain.status import AccountStatus, NodeStatus

ACCOUNT_STATUS: dict[str, AccountStatus] = {
    "active": AccountStatus.ACTIVE,
    "suspended": AccountStatus.SUSPENDED,
    "provisioning": AccountStatus.PENDING,
    "pending": AccountStatus.PENDING,
    "terminated": AccountStatus.TERMINATED,
}

NODE_STATUS: dict[str, NodeStatus] = {
    "online": NodeStatus.ONLINE,
    "offline": NodeStatus.OFFLINE,
    "inactive": NodeStatus.MAINTENANCE,
}


def node_raw_status(is_active: object, is_online: object) -> str | None:
    """An admin-disabled server is in maintenance whatever its health says."""
    if is_active is False:
        return "inactive"
    if is_online is None:
        return None
    return "online" if is_online else "offline"
