"""VirtFusion users as Accounts, and the 422 of a taken email or relation id as CONFLICT.

VirtFusion has no public source; this follows its API reference (users
``{name,email,extRelationId,sendMail}``, lookup ``/users/{extRelationId}/byExtRelation``) and the
endpoint catalogue at virtfusion.apidog.io. The API has no user list, so the Accounts the
gateway can show are the owners embedded in the server list plus users it created itself.
"""

from __future__ import annotations

from typing import Any

import httpx

from panelql.domain.records import AccountRecord
from panelql.domain.status import AccountStatus
from panelql.providers.errors import Conflict, ProviderError
from panelql.providers.http import Upstream
from panelql.providers.virtfusion.parse import as_str

# VirtFusion's field names → the gateway's input names, for errors that name a field.
FIELDS = {"email": "email", "extRelationId": "externalRef", "name": "name"}


def account(connection: str, raw: dict[str, Any]) -> AccountRecord:
    """A user object, or the ``owner`` embedded in a server (which may carry fewer keys)."""
    email = as_str(raw.get("email"))
    return AccountRecord(
        connection=connection, id=str(raw["id"]), username=email or str(raw["id"]),
        email=email,
        status=AccountStatus.SUSPENDED if raw.get("suspended") is True else AccountStatus.ACTIVE,
        raw_status="suspended" if raw.get("suspended") is True else None,
        external_ref=as_str(raw.get("extRelationId")))


class VirtFusionUpstream(Upstream):
    """Laravel's 422 ``{"errors": {field: ["… has already been taken."]}}`` is a collision
    with an existing user: CONFLICT naming the field, as a duplicate is no typo to fix."""

    def failure(self, response: httpx.Response, body: Any) -> ProviderError:
        errors = body.get("errors") if isinstance(body, dict) else None
        if response.status_code == 422 and isinstance(errors, dict):
            for name, messages in errors.items():
                text = " ".join(str(m) for m in messages) if isinstance(messages, list) \
                    else str(messages)
                if "already been taken" in text:
                    return Conflict(text, field=FIELDS.get(str(name), str(name)),
                                    current_status="TAKEN", provider=self.provider,
                                    upstream_status=422, debug={"status": 422})
        return super().failure(response, body)
