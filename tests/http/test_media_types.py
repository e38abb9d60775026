"""Accept negotiation and request Content-Type checks, as pure functions."""

from __future__ import annotations

import pytest

from panelql.web.media_types import (
    GRAPHQL_RESPONSE_JSON,
    JSON,
    UnsupportedBody,
    check_request_body_type,
    negotiate,
    parse_accept,
)


@pytest.mark.parametrize(("accept", "expected"), [
    (None, JSON),
    ("", JSON),
    ("application/json", JSON),
    ("application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
    ("*/*", JSON),
    ("application/json;q=0.9,application/graphql-response+json;q=0.8", JSON),
    # The specific range outranks the wildcard, even with a lower q.
    ("application/*;q=1, application/graphql-response+json;q=0.2", JSON),
    ("application/json;q=abc, application/graphql-response+json;q=0.1",
     GRAPHQL_RESPONSE_JSON),
    ("application/json;q=7", JSON),  # out-of-range q is clamped, not an error
    ('application/json; charset="UTF-8"', JSON),
    ("text/html", None),
    ("application/json;charset=latin1", None),
    ("*/*;q=0", None),
    ("garbage", None),
])
def test_negotiate(accept: str | None, expected: str | None) -> None:
    assert negotiate(accept) == expected


def test_parse_accept_keeps_parameters_and_quality() -> None:
    (first, second) = parse_accept('text/html;level=1;q=0.5, application/json')
    assert (first.type, first.subtype, first.params, first.q) == ("text", "html",
                                                                  {"level": "1"}, 0.5)
    assert second.q == 1.0


@pytest.mark.parametrize("header", ["application/json", "application/json; charset=utf-8",
                                    "APPLICATION/JSON;CHARSET=UTF8"])
def test_json_bodies_pass(header: str) -> None:
    check_request_body_type(header)


@pytest.mark.parametrize("header", [None, "", "text/plain", "application/jsonx",
                                    "application/json; charset=iso-8859-1"])
def test_other_bodies_are_refused(header: str | None) -> None:
    with pytest.raises(UnsupportedBody):
        check_request_body_type(header)
