"""DirectAdmin raw values → normalised enums.

DirectAdmin users carry only ``suspended=yes|no``; the raw value is kept
as ``rawStatus``. Domains have no status the legacy API reports, so zones are always ACTIVE.
"""

from __future__ import annotations

from panelql.domain.status import AccountStatus

ACCOUNT_STATUS: dict[str, AccountStatus] = {
    "no": AccountStatus.ACTIVE,
    "yes": AccountStatus.SUSPENDED,
}
