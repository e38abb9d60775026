"""The one event shape every source publishes and every subscription receives."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


class Topic(enum.Enum):
    SERVER = "server"
    NODE = "node"
    BACKUP = "backup"
    ACCOUNT = "account"
    INVOICE = "invoice"
    OPERATION = "operation"
    AUTOMATION = "automation"  # automation runs (application/automation)


class Source(enum.Enum):
    MUTATION = "mutation"
    WATCHER = "watcher"
    WEBHOOK = "webhook"


@dataclass(frozen=True)
class StatusEvent:
    topic: Topic
    connection: str
    resource_id: str  # upstream id (operations: the operation id)
    status: str
    previous: str | None
    source: Source
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body.update(topic=self.topic.value, source=self.source.value, at=self.at.isoformat())
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> StatusEvent:
        return cls(topic=Topic(body["topic"]), connection=body["connection"],
                   resource_id=body["resource_id"], status=body["status"],
                   previous=body.get("previous"), source=Source(body["source"]),
                   at=datetime.fromisoformat(body["at"]), data=dict(body.get("data") or {}))
