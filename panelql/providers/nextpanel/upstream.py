"""NextPanel's status quirk: a duplicate username is a 400, not a 409.

nextpanel-bill NEXTPANEL_API_KEY_TROUBLESHOOTING.md @9aa18120 lists the answers to
``POST /api/v1/billing/accounts``: 201 created, "400 Bad Request - API key works, but user
exists", 403 no permission, 401 wrong credentials. "Username already exists" is the message
its provisioning guides quote. A taken name is a conflict with existing state, so it is reported
as ``CONFLICT``; other 400s stay ``BAD_USER_INPUT``.

Every billing route needs a SUPER_ADMIN key: the same guide's 403 ("The user doesn't have super
admin privileges") says the gateway's key is too weak, never that one account is off limits, so
it is the credentials error of the shared table, not ``FORBIDDEN``.
"""

from __future__ import annotations

from typing import Any

import httpx

from panelql.providers.errors import AuthenticationFailed, Conflict, ProviderError
from panelql.providers.http import Upstream


class NextPanelUpstream(Upstream):
    def failure(self, response: httpx.Response, body: Any) -> ProviderError:
        error = super().failure(response, body)
        if response.status_code == 400 and "already exists" in error.message.lower():
            return Conflict(error.message, provider=self.provider,
                            debug=error.debug, upstream_status=400)
        if response.status_code == 403:
            return AuthenticationFailed(f"{self.provider} rejected the gateway's credentials "
                                        "(the key needs super admin privileges)",
                                        provider=self.provider, debug=error.debug,
                                        upstream_status=403)
        return error
