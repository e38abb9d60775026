"""Operation (long upstream work the gateway follows) and audit log entries."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import cast

import strawberry
from strawberry.scalars import JSON

from panelql.domain.state import AuditRow, OperationRow


@strawberry.enum
class OperationStatus(enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@strawberry.type
class OperationError:
    code: str
    message: str


@strawberry.type
class Operation:
    row: strawberry.Private[OperationRow]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.row.id)

    @strawberry.field(description="The mutation that started it, e.g. startServer.")
    def action(self) -> str:
        return self.row.action

    @strawberry.field
    def status(self) -> OperationStatus:
        return OperationStatus(self.row.status)

    @strawberry.field(description="0..1 where the upstream or the step count tells.")
    def progress(self) -> float | None:
        return self.row.progress

    @strawberry.field(description="The step running (or that failed) in a composite flow.")
    def step(self) -> str | None:
        return self.row.step

    @strawberry.field
    def error(self) -> OperationError | None:
        if self.row.error_code is None:
            return None
        return OperationError(code=self.row.error_code, message=self.row.error_message or "")

    @strawberry.field(description="Provider connection of the target.")
    def provider(self) -> str:
        return self.row.connection

    @strawberry.field(description="The upstream id of the target.")
    def target_id(self) -> str:
        return self.row.target_id

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.row.updated_at


@strawberry.type
class AuditEntry:
    row: strawberry.Private[AuditRow]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def at(self) -> datetime:
        return self.row.at

    @strawberry.field
    def actor(self) -> str:
        return self.row.actor

    @strawberry.field
    def action(self) -> str:
        return self.row.action

    @strawberry.field
    def target(self) -> str | None:
        return self.row.target

    @strawberry.field(description="The input, with secrets redacted.")
    def input(self) -> JSON:
        return cast(JSON, self.row.input_summary)

    @strawberry.field
    def outcome(self) -> str:
        return self.row.outcome

    @strawberry.field
    def error_code(self) -> str | None:
        return self.row.error_code

    @strawberry.field
    def duration_ms(self) -> float | None:
        return self.row.duration_ms

    @strawberry.field(description="The upstream's own id of the last request this action made "
                                  "(Stripe Request-Id, PayPal Paypal-Debug-Id, Cloudflare "
                                  "CF-Ray, X-Request-Id), for the panel's support; null where "
                                  "the panel sends none.")
    def upstream_request_id(self) -> str | None:
        return self.row.upstream_request_id
