"""The upstream error table (providers/http.py ``error_for_status`` and the ``Upstream``
boundary, providers/errors.py): every HTTP answer and transport failure becomes the one
ProviderError the docs promise, with the extensions clients rely on. Written from the table in
docs and errors.py's docstring, without a server, so the mutation run can judge every mutant."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from panelql.providers import errors
from panelql.providers.http import Upstream, error_for_status, expect

URL = "http://panel.test/api/servers/7?token=secret-in-query"

# status -> (class, code, retryable): the documented table (README, docs/frontend.md: the
# panel refusing our credentials is PROVIDER_ERROR; its refusing our input, BAD_USER_INPUT).
TABLE: dict[int, tuple[type[errors.ProviderError], str, bool]] = {
    400: (errors.InvalidRequest, "BAD_USER_INPUT", False),
    401: (errors.AuthenticationFailed, "PROVIDER_ERROR", False),
    # A bare 403 is the panel refusing this object, not the key (bodies decide; see
    # tests/providers/test_error_table.py for the key-blaming and "disabled" ones).
    403: (errors.Forbidden, "FORBIDDEN", False),
    404: (errors.NotFound, "NOT_FOUND", False),
    409: (errors.Conflict, "CONFLICT", False),
    422: (errors.InvalidRequest, "BAD_USER_INPUT", False),
    423: (errors.Conflict, "CONFLICT", True),
    429: (errors.RateLimited, "RATE_LIMITED", True),
    500: (errors.Unavailable, "PROVIDER_UNAVAILABLE", True),
    502: (errors.Unavailable, "PROVIDER_UNAVAILABLE", True),
    503: (errors.Unavailable, "PROVIDER_UNAVAILABLE", True),
    504: (errors.Unavailable, "PROVIDER_UNAVAILABLE", True),
    599: (errors.Unavailable, "PROVIDER_UNAVAILABLE", True),
    302: (errors.UnexpectedResponse, "PROVIDER_ERROR", False),
    405: (errors.UnexpectedResponse, "PROVIDER_ERROR", False),
    418: (errors.UnexpectedResponse, "PROVIDER_ERROR", False),
    499: (errors.UnexpectedResponse, "PROVIDER_ERROR", False),
}


def answer(status: int, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=httpx.Request("GET", URL), **kwargs)


@pytest.mark.parametrize("status", sorted(TABLE))
def test_each_status_maps_to_its_error(status: int) -> None:
    cls, code, retryable = TABLE[status]
    error = error_for_status(answer(status), None, None, "cat")
    assert type(error) is cls
    assert error.code == code and error.retryable is retryable
    assert error.provider == "cat" and error.upstream_status == status
    assert error.debug == {"status": status, "url": "http://panel.test/api/servers/7"}
    assert error.extensions["code"] == code and error.extensions["retryable"] is retryable
    assert error.extensions["provider"] == "cat"


def test_messages() -> None:
    def text(status: int, message: str | None = None) -> str:
        return error_for_status(answer(status), None, message, "cat").message

    assert text(401, "token expired") == "cat rejected the gateway's credentials"
    assert text(403) == "cat does not allow this for this object: Forbidden"
    assert text(403, "Invalid API key") == "cat rejected the gateway's credentials"
    assert text(404) == "not found upstream" and text(404, "no such vm") == "no such vm"
    assert text(409) == "cat answered HTTP 409" and text(409, "busy") == "busy"
    assert text(423, "locked") == "locked" and text(423) == "cat answered HTTP 423"
    assert text(422, "name taken") == "name taken" and text(400) == "cat answered HTTP 400"
    assert text(429, "slow down") == "cat is rate limiting the gateway"
    assert text(503, "db down") == "cat is failing (HTTP 503)"
    assert text(418, "teapot") == "cat answered HTTP 418"


@pytest.mark.parametrize(("headers", "body", "expected"), [
    ({"Retry-After": "7"}, None, 7.0),
    ({"Retry-After": "0.5"}, {"retryAfter": 9}, 0.5),  # the header wins
    ({"Retry-After": "soon"}, {"retryAfter": 9}, None),  # a bad header is not a number
    ({}, {"retryAfter": 9}, 9.0),
    ({}, {"retryAfter": 2.5}, 2.5),
    ({}, {"retryAfter": "9"}, None),
    ({}, ["retryAfter"], None),
    ({}, None, None),
])
def test_rate_limits_carry_retry_after(headers: dict[str, str], body: Any,
                                       expected: float | None) -> None:
    error = error_for_status(answer(429, headers), body, None, "cat")
    assert isinstance(error, errors.RateLimited) and error.retry_after == expected
    if expected is None:
        assert "retryAfter" not in error.extensions
    else:
        assert error.extensions["retryAfter"] == expected


def test_conflicts_carry_the_current_status() -> None:
    error = errors.Conflict("busy", current_status="RUNNING", provider="cat")
    assert error.extensions == {"code": "CONFLICT", "provider": "cat", "retryable": False,
                                "currentStatus": "RUNNING"}
    assert errors.Conflict("busy").extensions.get("currentStatus") is None


def test_errors_carry_their_message_and_field_details() -> None:
    error = errors.ProviderError("panel said no", provider="cat")
    assert str(error) == "panel said no" and error.message == "panel said no"
    assert errors.InvalidRequest("bad").fields == {}
    assert errors.InvalidRequest("bad", fields={"name": "taken"}).fields == {"name": "taken"}


def test_with_provider_fills_in_only_a_missing_name() -> None:
    error = errors.NotFound("gone")
    assert error.with_provider("cat") is error and error.provider == "cat"
    assert error.with_provider("other").provider == "cat"


def test_the_tree() -> None:
    for cls in (errors.NotFound, errors.Conflict, errors.RateLimited, errors.Unavailable,
                errors.AuthenticationFailed, errors.InvalidRequest, errors.UnexpectedResponse,
                errors.CapabilityNotSupported):
        assert issubclass(cls, errors.ProviderError)
    plain = errors.ProviderError("x")
    assert (plain.code, plain.retryable, plain.debug, plain.provider) == (
        "PROVIDER_ERROR", False, {}, None)
    assert errors.CapabilityNotSupported("no").retryable is False


# -- the boundary: what Upstream raises for answers and transport failures --------------------
def upstream(handler: Any, read_error: Any = None) -> Upstream:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler),
                               base_url="http://panel.test")
    return Upstream(client, "cat", read_error or (lambda body: body.get("error")))


async def test_success_passes_through_and_json_is_decoded() -> None:
    api = upstream(lambda request: httpx.Response(200, json={"ok": True}))
    assert await api.json("POST", "/x", json={}) == {"ok": True}
    assert (await api.request("POST", "/x")).status_code == 200
    empty = upstream(lambda request: httpx.Response(204))
    assert await empty.json("DELETE", "/x") is None
    blank = upstream(lambda request: httpx.Response(200, content=b""))
    assert await blank.json("POST", "/x") is None


async def test_a_success_that_is_not_json_is_unexpected() -> None:
    api = upstream(lambda request: httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(errors.UnexpectedResponse) as caught:
        await api.json("POST", "/x")
    assert caught.value.message == "cat sent a body that is not JSON"
    assert caught.value.debug["snippet"].startswith("<html>")
    assert caught.value.provider == "cat"


async def test_failed_answers_use_the_panels_own_message() -> None:
    api = upstream(lambda request: httpx.Response(422, json={"error": "name is taken"}))
    with pytest.raises(errors.InvalidRequest) as caught:
        await api.json("POST", "/x")
    assert caught.value.message == "name is taken" and caught.value.upstream_status == 422
    garbled = upstream(lambda request: httpx.Response(409, content=b"\xff\xfe not json"))
    with pytest.raises(errors.Conflict) as conflict:
        await garbled.json("POST", "/x")
    assert conflict.value.message == "cat answered HTTP 409"  # no body to read a message from
    empty = upstream(lambda request: httpx.Response(404, content=b""),
                     read_error=lambda body: pytest.fail("no body: nothing to read"))
    with pytest.raises(errors.NotFound):
        await empty.json("GET", "/x")


@pytest.mark.parametrize(("failure", "message"), [
    (httpx.ReadTimeout, "cat timed out"), (httpx.ConnectTimeout, "cat timed out"),
    (httpx.ConnectError, "cat is unreachable"), (httpx.ReadError, "cat is unreachable"),
    (httpx.RemoteProtocolError, "cat is unreachable"),
])
async def test_transport_failures_are_unavailable(failure: type[Exception],
                                                  message: str) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure("scripted", request=request)  # type: ignore[call-arg]

    with pytest.raises(errors.Unavailable) as caught:
        await upstream(fail).json("POST", "/servers/1/start")
    assert caught.value.message == message and caught.value.retryable is True
    assert caught.value.provider == "cat" and caught.value.debug["path"] == "/servers/1/start"
    assert caught.value.upstream_status is None  # nothing was answered: may have happened


def test_expect_guards_payload_shapes() -> None:
    expect(True, "cat", "server list")
    with pytest.raises(errors.UnexpectedResponse) as caught:
        expect(False, "cat", "server list")
    assert caught.value.message == "cat sent an unexpected server list"
    assert caught.value.provider == "cat"
