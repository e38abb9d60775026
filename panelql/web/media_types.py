"""Media types of GraphQL over HTTP: which response type a client accepts, which bodies we read.

The GraphQL-over-HTTP specification defines two response types.
``application/graphql-response+json`` lets the status code tell request errors (4xx, no
``data``) from field errors (200, ``data``); ``application/json`` is the legacy type, where
every well-formed request answers 200. Both are always UTF-8. Request bodies are
``application/json`` only, also UTF-8.
"""

from __future__ import annotations

from dataclasses import dataclass

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
# Preference on a tie (``*/*``, ``application/*`` or equal q-values): ``application/json``. The
# GraphQL-over-HTTP spec tells servers to treat a request without a usable preference as if it
# had sent ``Accept: application/json``, and graphql-http's server audit checks exactly that for
# ``*/*`` and for a missing header. A client that wants the spec's own type asks for it by name.
OFFERED = (JSON, GRAPHQL_RESPONSE_JSON)
DEFAULT = JSON
UTF8 = frozenset({"utf-8", "utf8"})


class UnsupportedBody(ValueError):
    """A POST body we cannot read: wrong media type or charset (HTTP 415)."""


@dataclass(frozen=True)
class MediaRange:
    type: str
    subtype: str
    params: dict[str, str]
    q: float

    def matches(self, media: str) -> bool:
        kind, sub = media.split("/", 1)
        if self.type not in ("*", kind) or self.subtype not in ("*", sub):
            return False
        # We only ever write UTF-8; a range asking for another charset is not ours.
        charset = self.params.get("charset")
        return charset is None or charset in UTF8

    @property
    def specificity(self) -> int:
        # RFC 9110 §12.5.1: the most specific range that matches decides the quality.
        return (self.type != "*") + (self.subtype != "*") + bool(self.params)


def split_params(value: str) -> tuple[str, dict[str, str]]:
    """``"Application/JSON; Charset=UTF-8"`` → ``("application/json", {"charset": "utf-8"})``."""
    head, *rest = value.split(";")
    params: dict[str, str] = {}
    for item in rest:
        name, _, val = item.partition("=")
        if name.strip():
            params[name.strip().lower()] = val.strip().strip('"').lower()
    return head.strip().lower(), params


def parse_accept(header: str) -> list[MediaRange]:
    ranges = []
    for item in header.split(","):
        media, params = split_params(item)
        kind, slash, sub = media.partition("/")
        if not slash or not kind or not sub:
            continue  # a malformed entry accepts nothing; the rest of the header still counts
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 0.0
        ranges.append(MediaRange(kind, sub, params, min(max(q, 0.0), 1.0)))
    return ranges


def quality(media: str, ranges: list[MediaRange]) -> float:
    matching = [r for r in ranges if r.matches(media)]
    if not matching:
        return 0.0
    return max(matching, key=lambda r: r.specificity).q


def negotiate(accept: str | None) -> str | None:
    """The response media type for an Accept header, or None when we offer nothing it accepts."""
    if accept is None or not accept.strip():
        return DEFAULT
    ranges = parse_accept(accept)
    best, best_q = None, 0.0
    for media in OFFERED:
        q = quality(media, ranges)
        if q > best_q or (q == best_q > 0 and _named(media, ranges)):
            best, best_q = media, q
    return best


def _named(media: str, ranges: list[MediaRange]) -> bool:
    """Whether the header names ``media`` itself rather than reaching it through a wildcard:
    a client that lists the spec's type beside application/json at the same q gets it."""
    return any(r.specificity >= 2 and r.matches(media) for r in ranges)


def content_type(media: str) -> str:
    return f"{media}; charset=utf-8"


def check_request_body_type(header: str | None) -> None:
    """Raise :class:`UnsupportedBody` unless a POST body is UTF-8 ``application/json``."""
    if not header or not header.strip():
        raise UnsupportedBody("a POST request needs Content-Type: application/json")
    media, params = split_params(header)
    if media != JSON:
        raise UnsupportedBody(f"unsupported Content-Type {media!r}; send application/json")
    charset = params.get("charset")
    if charset is not None and charset not in UTF8:
        raise UnsupportedBody(f"unsupported charset {charset!r}; send utf-8")
