"""DirectAdmin's two response dialects, its in-body errors, and its zone text.

DirectAdmin's legacy API answers url-encoded bodies (``key=val&list[]=a``) with HTML entities
such as ``&#61;`` that must be unescaped *before* splitting (omines ``Conversion``); with
``json=yes`` it answers JSON. Errors come inside the body in both dialects: ``error=1&text=…``
with HTTP 200, or ``{"error": …, "result": …}`` with HTTP 200 or 500 depending on the version.
This module turns all of that into Python values or ProviderErrors; it does no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from panelql.providers.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    ProviderError,
    UnexpectedResponse,
)

_ENTITY = re.compile(r"&#(\d{2,3});")

# DirectAdmin error texts are free sentences; these phrases pick the most specific error.
_NOT_FOUND = ("does not exist", "doesn't exist", "not found", "no such", "unable to find",
              "do not own")
_CONFLICT = ("already", "is suspended", "is not suspended", "not suspended", "in use")


def unescape(text: str) -> str:
    return _ENTITY.sub(lambda m: chr(int(m.group(1))), text)


def parse_urlencoded(text: str, provider: str) -> dict[str, str] | list[str]:
    """A legacy body: ``list[]=…`` pairs become a list of names, anything else a flat dict."""
    stripped = text.strip()
    if not stripped:
        return {}
    if stripped.startswith("<") or "=" not in stripped:
        raise UnexpectedResponse(f"{provider} sent a body that is not url-encoded",
                                 provider=provider, debug={"snippet": stripped[:200]})
    pairs = parse_qsl(unescape(stripped), keep_blank_values=True)
    names = [value for key, value in pairs if key == "list[]"]
    if names or stripped.startswith("list[]"):
        return names
    return dict(pairs)


def error_from_text(text: str, details: str, provider: str, status: int | None) -> ProviderError:
    """Classify a DirectAdmin error sentence into the provider error tree."""
    message = f"{text}: {details}" if details and details != text else text
    message = message or f"{provider} reported an error"
    lowered = message.lower()
    kwargs: dict[str, Any] = {"provider": provider, "upstream_status": status,
                              "debug": {"text": text, "details": details}}
    if any(phrase in lowered for phrase in _NOT_FOUND):
        return NotFound(message, **kwargs)
    if any(phrase in lowered for phrase in _CONFLICT):
        return Conflict(message, **kwargs)
    return InvalidRequest(message, **kwargs)


def json_error(body: Any) -> tuple[str, str] | None:
    """``(text, details)`` when a JSON body is DirectAdmin's error envelope, else None."""
    if not isinstance(body, dict) or "error" not in body:
        return None
    flag = body["error"]
    if flag in (0, "0", "", False, None):
        return None
    if flag in (1, "1", True):  # legacy keys carried over into JSON by some versions
        return str(body.get("text") or ""), str(body.get("details") or "")
    return str(flag), str(body.get("result") or body.get("details") or "")


def legacy_error(parsed: dict[str, str] | list[str]) -> tuple[str, str] | None:
    if isinstance(parsed, dict) and parsed.get("error") not in (None, "0"):
        return parsed.get("text", ""), parsed.get("details", "")
    return None


def decode(response: httpx.Response, *, json_mode: bool, provider: str, raw: bool = False) -> Any:
    """The body as Python data, raising the in-body error when there is one.

    ``raw`` is for commands whose legacy answer is free text (the DNS zone): the text is
    returned unless it is an ``error=…`` envelope.
    """
    content_type = response.headers.get("content-type", "")
    if "text/html" in content_type:
        # DirectAdmin's answer to an unknown command or a missing permission is its HTML UI.
        raise UnexpectedResponse(f"{provider} answered with an HTML page (unknown command or "
                                 "missing permission)", provider=provider)
    text = response.text
    if json_mode:
        try:
            body = json.loads(text) if text.strip() else {}
        except ValueError as exc:
            raise UnexpectedResponse(f"{provider} sent a body that is not JSON",
                                     provider=provider, debug={"snippet": text[:200]}) from exc
        found = json_error(body)
        if found:
            raise error_from_text(*found, provider, response.status_code)
        return body
    if raw and not text.lstrip().startswith("error="):
        if text.lstrip().startswith("<"):
            raise UnexpectedResponse(f"{provider} sent an unexpected zone body", provider=provider)
        return text
    parsed = parse_urlencoded(text, provider)
    found = legacy_error(parsed)
    if found:
        raise error_from_text(*found, provider, response.status_code)
    return parsed


def expect_envelope(body: Any, provider: str) -> None:
    """A command answering only a status: ``error=0&text=…`` or ``{"success": …}``."""
    if not (isinstance(body, dict) and ({"error", "success", "text"} & set(body))):
        raise UnexpectedResponse(f"{provider} sent an unexpected status answer",
                                 provider=provider)


def names(body: Any, provider: str, what: str) -> list[str]:
    """A list of names in either dialect (JSON array, ``{"list": [...]}`` or ``list[]``)."""
    if isinstance(body, dict) and not body:
        return []  # legacy: an empty list is an empty body
    if isinstance(body, dict) and isinstance(body.get("list"), list):
        body = body["list"]
    if not isinstance(body, list) or not all(isinstance(n, str) for n in body):
        raise UnexpectedResponse(f"{provider} sent an unexpected {what}", provider=provider)
    return list(body)


def record_key(rtype: str, name: str, value: str) -> str:
    """A DNS record's id: DirectAdmin identifies records by type, name and value only."""
    return urlencode({"type": rtype, "name": name, "value": value})


def parse_record_key(key: str) -> tuple[str, str, str]:
    fields = dict(parse_qsl(key, keep_blank_values=True))
    if not fields.get("type") or "name" not in fields or "value" not in fields:
        raise InvalidRequest("not a DirectAdmin DNS record id")
    return fields["type"].upper(), fields["name"], fields["value"]


def _strip_comment(line: str) -> str:
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            return line[:index]
    return line


def parse_zone_text(text: str) -> list[dict[str, str]]:
    """Records of a legacy BIND-style zone answer (tab-separated, SOA over several lines).

    Returns the same shape as JSON mode's ``records``: name, ttl, type, value. The SOA is
    skipped: it is not editable through DNS_CONTROL.
    """
    records: list[dict[str, str]] = []
    default_ttl = ""
    in_parens = False
    for raw_line in text.splitlines():
        line = _strip_comment(raw_line).rstrip()
        if in_parens:
            in_parens = ")" not in line
            continue
        if not line.strip():
            continue
        if line.startswith("$TTL"):
            default_ttl = line.split()[1] if len(line.split()) > 1 else ""
            continue
        if line.startswith("$"):
            continue
        if "(" in line and ")" not in line:
            in_parens = True
        parts = line.split()
        record = _zone_line(parts, default_ttl)
        if record is not None:
            records.append(record)
    return records


def _zone_line(parts: list[str], default_ttl: str) -> dict[str, str] | None:
    if len(parts) < 3:
        return None
    name, rest = parts[0], parts[1:]
    ttl = default_ttl
    if rest and rest[0].isdigit():
        ttl, rest = rest[0], rest[1:]
    if rest and rest[0].upper() == "IN":
        rest = rest[1:]
    if len(rest) < 2 or rest[0].upper() == "SOA":
        return None
    return {"name": name, "ttl": ttl, "type": rest[0].upper(), "value": " ".join(rest[1:])}
