"""Idempotency keys (db/repositories.py ``Idempotency``) and how every mutation runs with them
(application/execution.py), against a real SQLite file but without HTTP: fast enough for the
mutation run to judge every mutant. The e2e tests check the same through GraphQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from panelql.application import execution
from panelql.application.context import Viewer
from panelql.application.errors import BadUserInput, GatewayError, NotFoundError, StateConflict
from panelql.application.execution import ActionResult, execute
from panelql.db.engine import create_engine, session_factory
from panelql.db.migrate import upgrade
from panelql.db.models import IdempotencyRecord
from panelql.db.repositories import Audit, Idempotency
from panelql.providers.errors import InvalidRequest, Unavailable

TTL = timedelta(hours=1)


@dataclass
class Settings:
    idempotency_ttl_hours: float = 24
    idempotency_takeover_seconds: float = 300


@dataclass
class Gateway:
    idempotency: Idempotency
    audit: Audit
    settings: Settings = field(default_factory=Settings)


@dataclass
class Request:
    headers: dict[str, str]


@dataclass
class Ctx:
    gateway: Gateway
    viewer: Viewer = field(default_factory=lambda: Viewer(name="key:1:billing"))
    request: Any = None
    loaders: Any = field(default_factory=lambda: NoReads())


class NoReads:
    def forget(self) -> None:
        """Nothing was read: execute() drops the request's reads after a write."""


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'idem.db'}"
    await upgrade(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    yield Gateway(Idempotency(sessions), Audit(sessions))
    await engine.dispose()


class Action:
    """A mutation's body that counts its runs and returns or raises what it is told."""

    def __init__(self, result: ActionResult | None = None,
                 error: BaseException | None = None) -> None:
        self.result = result or ActionResult(target="srv-1", operation_id="op-1",
                                             data={"x": 1})
        self.error = error
        self.runs = 0

    async def __call__(self) -> ActionResult:
        self.runs += 1
        if self.error is not None:
            raise self.error
        return self.result


async def run(ctx: Ctx, action: Action, key: str | None = "order-1",
              values: dict[str, Any] | None = None, name: str = "startServer") -> ActionResult:
    return await execute(ctx, name, "srv-1", values or {"id": "srv-1"}, key,  # type: ignore[arg-type]
                         action)


# -- the repository -----------------------------------------------------------------------------
async def test_claim_new_done_mismatch_busy(gateway: Gateway) -> None:
    idem = gateway.idempotency
    assert (await idem.claim("a", "k", "h1", TTL)).state == "new"
    assert (await idem.claim("a", "k", "h1", TTL)).state == "busy"
    assert (await idem.claim("a", "k", "h2", TTL)).state == "mismatch"
    assert (await idem.claim("b", "k", "h2", TTL)).state == "new"  # keys are per scope
    await idem.complete("a", "k", {"target": "t"})
    done = await idem.claim("a", "k", "h1", TTL)
    assert (done.state, done.response) == ("done", {"target": "t"})
    assert (await idem.claim("a", "k", "h2", TTL)).state == "mismatch"
    await idem.complete("a", "other", {"target": "nobody"})  # completes nothing claimed
    assert (await idem.claim("a", "other", "h1", TTL)).state == "new"


async def test_release_and_expiry_free_the_key(gateway: Gateway) -> None:
    idem = gateway.idempotency
    assert (await idem.claim("a", "k", "h1", TTL)).state == "new"
    await idem.release("b", "k")  # another scope's key is not touched
    assert (await idem.claim("a", "k", "h1", TTL)).state == "busy"
    assert (await idem.claim("a", "other-key", "h1", TTL)).state == "new"
    await idem.release("a", "k")
    assert (await idem.claim("a", "k", "h2", TTL)).state == "new"
    # only that key: the scope's other claims stay
    assert (await idem.claim("a", "other-key", "h1", TTL)).state == "busy"
    assert (await idem.claim("a", "gone", "h1", timedelta(seconds=-1))).state == "new"
    assert (await idem.claim("a", "kept", "h1", TTL)).state == "new"
    # an expired claim does not block the key, whatever its input was
    assert (await idem.claim("a", "gone", "h9", TTL)).state == "new"
    assert (await idem.claim("a", "old", "h1", timedelta(seconds=-1))).state == "new"
    assert await idem.purge_expired() == 1
    assert (await idem.claim("a", "kept", "h1", TTL)).state == "busy"


# -- execute -----------------------------------------------------------------------------------
async def test_same_key_same_input_replays_without_running_again(gateway: Gateway) -> None:
    ctx = Ctx(gateway)
    action = Action()
    first = await run(ctx, action)
    assert (first.target, first.operation_id, first.data, first.replayed) == (
        "srv-1", "op-1", {"x": 1}, False)
    again = await run(ctx, action)
    assert (again.target, again.operation_id, again.data, again.replayed) == (
        "srv-1", "op-1", {"x": 1}, True)
    assert action.runs == 1
    other_viewer = Ctx(gateway, Viewer(name="key:2:other"))
    assert (await run(other_viewer, action)).replayed is False  # keys are per API key
    assert action.runs == 2
    audit = await gateway.audit.search()
    assert [(e.action, e.outcome, e.actor) for e in audit] == [
        ("startServer", "ok", "key:2:other"), ("startServer", "ok", "key:1:billing")]


async def test_same_key_other_input_is_bad_user_input(gateway: Gateway) -> None:
    ctx = Ctx(gateway)
    action = Action()
    await run(ctx, action)
    for values, name in (({"id": "srv-2"}, "startServer"), ({"id": "srv-1"}, "stopServer")):
        with pytest.raises(BadUserInput) as caught:
            await run(ctx, action, values=values, name=name)
        assert caught.value.details == {"field": "idempotencyKey"}
    assert action.runs == 1


async def test_without_key_every_call_runs(gateway: Gateway) -> None:
    ctx = Ctx(gateway)
    action = Action()
    await run(ctx, action, key=None)
    await run(ctx, action, key=None)
    assert action.runs == 2
    header = Ctx(gateway, request=Request({"idempotency-key": "from-header"}))
    await run(header, action, key=None)
    assert (await run(header, action, key=None)).replayed is True
    assert action.runs == 3
    assert (await run(header, action, key="explicit")).replayed is False  # explicit wins
    assert action.runs == 4


@pytest.mark.parametrize("key", ["", "k" * 256])
async def test_key_length_is_checked(gateway: Gateway, key: str) -> None:
    action = Action()
    if key == "":  # an empty explicit key falls back to the header (none here): no key
        await run(Ctx(gateway), action, key=key)
        assert action.runs == 1
        return
    with pytest.raises(BadUserInput) as caught:
        await run(Ctx(gateway), action, key=key)
    assert caught.value.details == {"field": "idempotencyKey"} and action.runs == 0


async def test_longest_and_shortest_keys_work(gateway: Gateway) -> None:
    action = Action()
    for key in ("k", "k" * 255):
        await run(Ctx(gateway), action, key=key)
        assert (await run(Ctx(gateway), action, key=key)).replayed is True
    assert action.runs == 2


async def test_failures_that_changed_nothing_release_the_key(gateway: Gateway) -> None:
    ctx = Ctx(gateway)
    errors: list[NotFoundError | InvalidRequest] = [NotFoundError("server not found"),
                               InvalidRequest("bad", provider="cat", upstream_status=422),
                               InvalidRequest("bad", provider="cat", upstream_status=400),
                               InvalidRequest("bad", provider="cat", upstream_status=499)]
    for n, error in enumerate(errors):
        key = f"k{n}"
        failing = Action(error=error)
        with pytest.raises(type(error)):
            await run(ctx, failing, key=key)
        fixed = Action()
        assert (await run(ctx, fixed, key=key)).replayed is False  # the corrected retry runs
        assert fixed.runs == 1
    audit = await gateway.audit.search(outcome="error")  # newest first
    assert [e.error_code for e in audit] == [e.code for e in reversed(errors)]


async def test_failures_that_may_have_changed_something_are_replayed(gateway: Gateway) -> None:
    ctx = Ctx(gateway)
    for n, error in enumerate([Unavailable("timed out", provider="cat"),
                               Unavailable("502", provider="cat", upstream_status=502),
                               Unavailable("odd", provider="cat", upstream_status=399),
                               Unavailable("odd", provider="cat", upstream_status=500)]):
        key = f"u{n}"
        with pytest.raises(Unavailable):
            await run(ctx, Action(error=error), key=key)
        retry = Action()
        with pytest.raises(GatewayError) as caught:  # the blind retry is not sent again
            await run(ctx, retry, key=key)
        assert retry.runs == 0
        assert caught.value.code == "PROVIDER_UNAVAILABLE"
        assert caught.value.message == error.message
        assert caught.value.details == {"provider": "cat", "replayed": True}


async def test_cancellation_releases_the_key(gateway: Gateway) -> None:
    ctx = Ctx(gateway)
    with pytest.raises(asyncio.CancelledError):
        await run(ctx, Action(error=asyncio.CancelledError()))
    assert (await run(ctx, Action())).replayed is False
    assert await gateway.audit.search() != []


async def test_a_running_key_makes_the_second_caller_wait(gateway: Gateway) -> None:
    ctx = Ctx(gateway)
    release = asyncio.Event()
    started = asyncio.Event()

    class Slow(Action):
        async def __call__(self) -> ActionResult:
            self.runs += 1
            started.set()
            await release.wait()
            return self.result

    slow = Slow()
    first = asyncio.create_task(run(ctx, slow))
    await started.wait()
    second = asyncio.create_task(run(ctx, slow))
    await asyncio.sleep(0.2)  # the second caller polls the busy key meanwhile
    assert not second.done()
    release.set()
    assert (await first).replayed is False and (await second).replayed is True
    assert slow.runs == 1


async def test_a_key_busy_past_the_wait_is_a_retryable_conflict(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(execution, "BUSY_WAIT_SECONDS", 0.1)
    await gateway.idempotency.claim("key:1:billing", "stuck",
                                    execution.fingerprint("startServer", {"id": "srv-1"}), TTL)
    action = Action()
    with pytest.raises(StateConflict) as caught:
        await run(Ctx(gateway), action, key="stuck")
    assert caught.value.details == {"retryable": True} and action.runs == 0


async def test_audit_entries_redact_secrets_and_name_the_outcome(gateway: Gateway) -> None:
    ctx = Ctx(gateway)
    values = {"id": "a-1", "password": "hunter2", "nested": {"token": "t0k", "keep": 1},
              "newPassword": "x", "secret": "s", "api_key": "k", "new_password": "y"}
    await execute(ctx, "changeAccountPassword", "a-1", values, None,  # type: ignore[arg-type]
                  Action(result=ActionResult(target="a-1")))
    with pytest.raises(NotFoundError):
        await execute(ctx, "deleteAccount", "a-2", {"id": "a-2"}, None,  # type: ignore[arg-type]
                      Action(error=NotFoundError("account not found")))
    failed, ok = await gateway.audit.search()
    assert (ok.action, ok.target, ok.outcome, ok.error_code) == (
        "changeAccountPassword", "a-1", "ok", None)
    assert ok.input_summary == {"id": "a-1", "password": "[redacted]", "newPassword": "[redacted]",
                                "secret": "[redacted]", "api_key": "[redacted]",
                                "new_password": "[redacted]",
                                "nested": {"token": "[redacted]", "keep": 1}}
    assert ok.duration_ms is not None and ok.duration_ms >= 0
    assert (failed.action, failed.target, failed.outcome, failed.error_code) == (
        "deleteAccount", "a-2", "error", "NOT_FOUND")
    created = ActionResult(target="new-id")
    await execute(ctx, "createServer", None, {}, None,  # type: ignore[arg-type]
                  Action(result=created))
    assert (await gateway.audit.search(limit=1))[0].target == "new-id"


def test_fingerprint_is_canonical() -> None:
    fp = execution.fingerprint
    assert fp("a", {"x": 1, "y": 2}) == fp("a", {"y": 2, "x": 1})
    assert fp("a", {"x": 1}) != fp("b", {"x": 1})
    assert fp("a", {"x": 1}) != fp("a", {"x": 2})
    assert len(fp("a", {})) == 64


def test_results_round_trip_as_replays() -> None:
    result = ActionResult(target="t", operation_id="o", data={"k": [1]}, error=None)
    stored = result.to_json()
    assert stored == {"target": "t", "operation_id": "o", "data": {"k": [1]}, "error": None}
    back = ActionResult.from_json(stored)
    assert (back.target, back.operation_id, back.data, back.replayed, back.error) == (
        "t", "o", {"k": [1]}, True, None)
    assert ActionResult.from_json({}).data == {}


async def test_a_dead_convergent_run_is_taken_over_once(gateway: Gateway) -> None:
    """A claim left running by a process that died: only a convergent action takes it over,
    only once it is older than the takeover age, and of two retries exactly one wins."""
    stuck = await gateway.idempotency.claim("key:1:billing", "order-9", "h", TTL)
    assert stuck.state == "new"
    assert not await gateway.idempotency.take_over("key:1:billing", "order-9", "h",
                                                   timedelta(minutes=5))  # too young
    assert not await gateway.idempotency.take_over("key:1:billing", "order-9", "other",
                                                   timedelta(0))  # other input
    async with gateway.idempotency.sessions.begin() as session:  # the run began long ago
        await session.execute(update(IdempotencyRecord).values(
            created_at=datetime.now(UTC) - timedelta(hours=1)))
    wins = await asyncio.gather(*(gateway.idempotency.take_over(
        "key:1:billing", "order-9", "h", timedelta(minutes=5)) for _ in range(2)))
    assert sorted(wins) == [False, True]
    await gateway.idempotency.complete("key:1:billing", "order-9", {"target": "x"})
    assert not await gateway.idempotency.take_over("key:1:billing", "order-9", "h",
                                                   timedelta(0))  # finished: never again


async def test_only_convergent_actions_take_over_a_stuck_key(gateway: Gateway) -> None:
    gateway.settings.idempotency_takeover_seconds = 0
    ctx = Ctx(gateway)
    digest = execution.fingerprint("provisionService", {})
    await gateway.idempotency.claim("key:1:billing", "order-10", digest, TTL)
    action = Action()
    result = await execute(ctx, "provisionService", None, {}, "order-10", action,  # type: ignore[arg-type]
                           convergent=True)
    assert action.runs == 1 and not result.replayed
