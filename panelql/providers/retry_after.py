"""``Retry-After``, read once for every adapter and the retry guard.

RFC 9110 §10.2.3: the value is either delta-seconds or an HTTP-date. Both become seconds from
now (never negative); anything else, or no header, is None.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait that ``headers`` ask for (their names in any case)."""
    value = _header(headers or {}, "retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _header(headers: Mapping[str, str], name: str) -> str | None:
    found = headers.get(name)  # httpx.Headers: any case
    if found is None:  # a plain dict (stripe's error headers): look for the name in any case
        found = next((v for k, v in headers.items() if k.lower() == name), None)
    return found
