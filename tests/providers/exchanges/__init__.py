"""Request/response pairs taken from the upstream panels' public source.

Each exchange names the upstream file and commit it was read from. The same exchange is
replayed against the adapter with respx (the adapter must send what the route validates and
parse what it answers) and sent to the simulator (which must answer the same shape), so a
simulator drifting from the real panel fails its own tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Exchange:
    name: str
    source: str  # "path/in/upstream.ext @commit: what it shows"
    method: str
    path: str  # may hold {placeholders}, filled per run (recorded ids, or the simulator's)
    request: dict[str, Any] | None
    status: int
    response: Any
    headers: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)  # the placeholders' recorded values

    def recorded_path(self) -> str:
        return self.path.format(**self.ids)

    def recorded_request(self) -> dict[str, Any] | None:
        return fill(self.request, self.ids)


def fill(value: Any, ids: dict[str, str]) -> Any:
    """The value with ``{placeholder}`` strings replaced by ids (recorded or simulated)."""
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids.get(value[1:-1], value)
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    return value


def shape(value: Any) -> Any:
    """A body's structure: keys and value types, recursively (lists by their first item)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


ANY = "<any>"  # a recorded value standing for a relation the adapter does not read


def shape_matches(expected: Any, actual: Any) -> bool:
    """True when ``actual`` has the recorded structure. A recorded null matches any value
    (nullable columns), an empty recorded list matches any list, ANY matches anything."""
    if expected is None or expected == ANY:
        return True
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and set(expected) == set(actual)
                and all(shape_matches(expected[k], actual[k]) for k in expected))
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return False
        return not expected or not actual or shape_matches(expected[0], actual[0])
    return bool(shape(expected) == shape(actual))
