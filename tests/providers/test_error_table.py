"""The one error table (providers/http.py): a 403 is told apart by what the panel said."""

from __future__ import annotations

import httpx
import pytest

from panelql.providers import errors
from panelql.providers.http import error_for_status


def answer(status: int) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("GET", "http://panel.test/x?key=s"))


@pytest.mark.parametrize(("status", "message", "kind", "code"), [
    (401, "Unauthorized", errors.AuthenticationFailed, "PROVIDER_ERROR"),
    (401, None, errors.AuthenticationFailed, "PROVIDER_ERROR"),
    # Catalyst index.ts, Pterodactyl's IP allow-list (AuthenticateIPAccess), a token scope.
    (403, "Invalid API key", errors.AuthenticationFailed, "PROVIDER_ERROR"),
    (403, "This IP address (192.0.2.7) does not have permission to access the API using "
          "these credentials.", errors.AuthenticationFailed, "PROVIDER_ERROR"),
    (403, "The token lacks the scope needed", errors.AuthenticationFailed, "PROVIDER_ERROR"),
    # Catalyst routes/backups.ts: a feature off for this server is a wrong state.
    (403, "Backup allocation disabled. Configure S3 or SFTP to enable backups.",
     errors.Conflict, "CONFLICT"),
    # Catalyst routes/servers/invites.ts owner-only rule, and a bare 403.
    (403, "Forbidden", errors.Forbidden, "FORBIDDEN"),
    (403, "You don't have access to this node", errors.Forbidden, "FORBIDDEN"),
    (403, None, errors.Forbidden, "FORBIDDEN"),
])
def test_403_is_classified_by_its_body(status: int, message: str | None,
                                       kind: type[errors.ProviderError], code: str) -> None:
    error = error_for_status(answer(status), None, message, "panel")
    assert type(error) is kind
    assert error.extensions["code"] == code and error.extensions["retryable"] is False
    if kind is errors.AuthenticationFailed:
        assert error.extensions["reason"] == "AUTHENTICATION"
        assert error.message == "panel rejected the gateway's credentials"
    elif message:
        assert message in error.message  # the panel's own words reach the client


def test_upstream_field_errors_reach_the_extensions() -> None:
    error = errors.InvalidRequest("Invalid request body", provider="panel",
                                  fields={"resources.cpuCores": "expected int"})
    assert error.extensions["field"] == "resources.cpuCores"
    assert error.extensions["fields"] == {"resources.cpuCores": "expected int"}
    assert "field" not in errors.InvalidRequest("bad", provider="panel").extensions
