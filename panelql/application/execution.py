"""How every mutation runs: idempotency key, the action itself, the audit entry.

The same key with the same input returns the stored result without touching the upstream,
also when the retries arrive concurrently (the database's primary key decides who runs). The
same key with other input is BAD_USER_INPUT. Only outcomes are recorded: failures that
certainly changed nothing upstream (our own checks; the panel refusing with a 4xx or 503; the
circuit open; the panel unreachable), with no earlier write of the action possibly applied,
release the key so the same retry runs for real once the panel is back; failures that may have
changed something (a timeout after a write was sent, other 5xx) are stored and replayed, so a
blind retry can never apply a non-idempotent write twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from panelql.application.context import Context
from panelql.application.errors import BadUserInput, GatewayError, StateConflict
from panelql.application.redaction import sanitize
from panelql.providers import request_ids
from panelql.providers.errors import ProviderError
from panelql.providers.resilience import never_applied, tracking_writes

BUSY_WAIT_SECONDS = 60.0


@dataclass
class ActionResult:
    """What a mutation returns, in a form that can be stored and replayed."""

    target: str | None = None  # global ID of the resource acted on (or created)
    operation_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    replayed: bool = False
    error: dict[str, Any] | None = None  # a stored failure, replayed as the same error
    # One-time secrets (a login URL, a new password): handed to this caller only, never part
    # of to_json, so never in the idempotency record, the audit log or a replay.
    secrets: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "operation_id": self.operation_id, "data": self.data,
                "error": self.error}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ActionResult:
        return cls(target=body.get("target"), operation_id=body.get("operation_id"),
                   data=dict(body.get("data") or {}), replayed=True, error=body.get("error"))


def fingerprint(action: str, values: dict[str, Any]) -> str:
    canonical = json.dumps({"action": action, "input": values}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_key(ctx: Context, explicit: str | None) -> str | None:
    if explicit:
        return explicit
    request = ctx.request
    headers = getattr(request, "headers", None)
    return headers.get("idempotency-key") if headers is not None else None


async def execute(ctx: Context, action: str, target: str | None, values: dict[str, Any],
                  key: str | None, run: Callable[[], Awaitable[ActionResult]], *,
                  convergent: bool = False) -> ActionResult:
    """``convergent``: the action finds what an earlier, interrupted attempt made before making
    anything (provisionService), so a failure releases the key and the retry finishes the job
    instead of replaying the failure."""
    gateway = ctx.gateway
    key = idempotency_key(ctx, key)
    if key is not None and not (1 <= len(key) <= 255):
        raise BadUserInput("idempotencyKey must be 1 to 255 characters", field="idempotencyKey")
    scope = ctx.viewer.name
    if key is not None:
        replay = await _claim(ctx, scope, key, fingerprint(action, values),
                              convergent=convergent)
        if replay is not None:
            return _replay(replay)
    started = time.perf_counter()
    try:
        with request_ids.collecting() as upstream_ids, tracking_writes() as writes:
            result = await run()
    except (GatewayError, ProviderError) as exc:
        await _audit(ctx, action, target, values, started, upstream_ids, error=exc)
        if key is not None:
            await _settle_failure(ctx, scope, key, exc, wrote=bool(writes),
                                  convergent=convergent)
        raise
    except BaseException:
        if key is not None:
            await asyncio.shield(gateway.idempotency.release(scope, key))
        raise
    # The payload reads its object after the write: not from what the checks before it read.
    ctx.loaders.forget()
    await _audit(ctx, action, result.target or target, values, started, upstream_ids,
                 error=None)
    if key is not None:
        await gateway.idempotency.complete(scope, key, result.to_json())
    return result


async def _claim(ctx: Context, scope: str, key: str, digest: str, *,
                 convergent: bool = False) -> ActionResult | None:
    settings = ctx.gateway.settings
    ttl = timedelta(hours=settings.idempotency_ttl_hours)
    takeover = timedelta(seconds=settings.idempotency_takeover_seconds)
    deadline = time.monotonic() + BUSY_WAIT_SECONDS
    while True:
        claim = await ctx.gateway.idempotency.claim(scope, key, digest, ttl)
        if claim.state == "new":
            return None
        if claim.state == "mismatch":
            raise BadUserInput("this idempotencyKey was used with different input",
                               field="idempotencyKey")
        if claim.state == "done":
            assert claim.response is not None
            return ActionResult.from_json(claim.response)
        if convergent and await ctx.gateway.idempotency.take_over(scope, key, digest, takeover):
            return None  # the earlier run died with its process: finish its job
        if time.monotonic() > deadline:
            raise StateConflict("an earlier request with this idempotencyKey is still running",
                                retryable=True)
        await asyncio.sleep(0.05)  # another request with this key is running: wait for it


def _replay(result: ActionResult) -> ActionResult:
    if result.error is not None:
        error = GatewayError(result.error["message"], **result.error.get("details", {}))
        error.code = result.error["code"]
        raise error
    return result


async def _settle_failure(ctx: Context, scope: str, key: str,
                          exc: GatewayError | ProviderError, *, wrote: bool,
                          convergent: bool = False) -> None:
    """Release the key when nothing changed upstream, else store the failure for replay.
    ``wrote``: an earlier write of this action may have been applied (then a retry must not
    run it again, whatever the final error says)."""
    if convergent or (not wrote and (isinstance(exc, GatewayError) or never_applied(exc))):
        await ctx.gateway.idempotency.release(scope, key)
        return
    stored = {"code": exc.code, "message": exc.message,
              "details": {"provider": getattr(exc, "provider", None), "replayed": True}}
    await ctx.gateway.idempotency.complete(scope, key, ActionResult(error=stored).to_json())


async def _audit(ctx: Context, action: str, target: str | None, values: dict[str, Any],
                 started: float, upstream_ids: list[str], *,
                 error: GatewayError | ProviderError | None) -> None:
    await ctx.gateway.audit.append(
        actor=ctx.viewer.name, action=action, target=target, input_summary=sanitize(values),
        outcome="error" if error else "ok", error_code=error.code if error else None,
        upstream_request_id=request_ids.summary(upstream_ids),
        duration_ms=(time.perf_counter() - started) * 1000,
    )
