"""What an adapter needs to know about one provider connection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Secret:
    """A credential value that never prints itself (repr, str, logs, error payloads)."""

    _value: str = field(repr=False)

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return "**********"

    def __repr__(self) -> str:
        return "Secret('**********')"


@dataclass(frozen=True)
class ConnectionConfig:
    name: str
    kind: str
    base_url: str
    credentials: dict[str, Secret] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    timeout_seconds: float = 25.0
    region: str | None = None

    def credential(self, key: str) -> str:
        secret = self.credentials.get(key)
        if secret is None:
            raise KeyError(f"connection {self.name!r} has no credential {key!r}")
        return secret.reveal()
