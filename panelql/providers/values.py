"""Small parsers for values every upstream sends in its own loose way."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 timestamps (``Z`` or offsets); anything else is None, never an exception,
    because a bad timestamp must not fail a whole list."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
