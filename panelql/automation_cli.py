"""``panelql automation …``: billing automation policies, the global pause and the runs, from
the shell (the same validation as the GraphQL mutations, straight on the database).

    panelql automation create "suspend after 3 days overdue" --trigger overdue --overdue-days 3
    panelql automation list
    panelql automation disable 1        # the policy's switch; enable to switch it back on
    panelql automation pause            # every policy, on every replica; resume to undo
    panelql automation runs --customer whmcs:42
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from panelql.admin import CliError, database
from panelql.application.automation import policies
from panelql.application.errors import GatewayError
from panelql.db.automation import AutomationStore
from panelql.domain.automation import PolicyRow, PolicySpec, RunRow, Trigger
from panelql.settings import Settings

T = TypeVar("T")
TRIGGERS = [t.value.lower().replace("_", "-") for t in Trigger]


def add_parser(sub: Any) -> None:
    auto = sub.add_parser("automation", help="billing automation policies, pause, runs")
    asub = auto.add_subparsers(dest="automation_command", required=True, metavar="COMMAND")
    asub.add_parser("list", help="the policies")
    create = asub.add_parser("create", help="create a policy")
    create.add_argument("name")
    create.add_argument("--trigger", required=True, choices=TRIGGERS)
    create.add_argument("--overdue-days", type=int, default=0,
                        help="overdue: act this many days after the due date")
    create.add_argument("--kind", action="append",
                        help="repeatable: only services on these kinds (catalyst, directadmin, …)")
    create.add_argument("--no-unsuspend", action="store_true",
                        help="do not lift the suspension when the invoice is paid")
    create.add_argument("--terminate-after-days", type=float,
                        help="cancellation: terminate this long after the cancellation")
    create.add_argument("--no-final-backup", action="store_true",
                        help="cancellation: terminate without a final backup")
    create.add_argument("--dry-run", action="store_true",
                        help="record what would happen (PLANNED runs) without acting")
    create.add_argument("--disabled", action="store_true", help="create it switched off")
    for name, text in (("enable", "switch a policy on"), ("disable", "switch a policy off"),
                       ("delete", "delete a policy (its runs stay on record)")):
        one = asub.add_parser(name, help=text)
        one.add_argument("id", type=int)
    asub.add_parser("pause", help="hold every policy (the global pause)")
    asub.add_parser("resume", help="end the global pause")
    runs = asub.add_parser("runs", help="recent runs, newest first")
    runs.add_argument("--customer", help="only this customer reference")
    runs.add_argument("--limit", type=int, default=20)
    auto.set_defaults(func=cmd_automation)


def _with_store(settings: Settings, work: Callable[[AutomationStore], Awaitable[T]]) -> T:
    async def run() -> T:
        async with database(settings) as sessions:
            return await work(AutomationStore(sessions))
    try:
        return asyncio.run(run())
    except GatewayError as exc:
        field = exc.details.get("field")
        raise CliError(f"{'--' + _flag(field) + ': ' if field else ''}{exc.message}", 2) \
            from None


def _flag(field: str) -> str:
    if field == "kinds":
        return "kind"
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in str(field))


def cmd_automation(args: argparse.Namespace) -> int:
    from panelql.cli import _settings

    settings = _settings(args)
    command = args.automation_command
    if command == "list":
        rows = _with_store(settings, lambda s: s.policies())
        print("id\tname\tenabled\ttrigger\toverdue_days\tkinds\tunsuspend\tdry_run")
        for p in rows:
            print(_policy_line(p))
        paused = _with_store(settings, lambda s: s.paused())
        if paused:
            print("(paused: no policy acts until `panelql automation resume`)")
        return 0
    if command == "create":
        spec = PolicySpec(
            name=args.name, trigger=Trigger(args.trigger.upper().replace("-", "_")),
            overdue_days=args.overdue_days, kinds=args.kind,
            unsuspend_on_payment=not args.no_unsuspend,
            terminate_after_days=args.terminate_after_days,
            final_backup=not args.no_final_backup, dry_run=args.dry_run,
            enabled=not args.disabled)
        row = _with_store(settings, lambda s: policies.create_in(s, spec))
        print(f"created policy {row.id} ({row.name})")
        return 0
    if command in ("enable", "disable"):
        row = _with_store(settings, lambda s: policies.update_in(
            s, args.id, {"enabled": command == "enable"}))
        print(f"policy {row.id} ({row.name}) {'enabled' if row.enabled else 'disabled'}")
        return 0
    if command == "delete":
        if not _with_store(settings, lambda s: s.delete_policy(args.id)):
            raise CliError(f"no automation policy with id {args.id}")
        print(f"deleted policy {args.id}")
        return 0
    if command in ("pause", "resume"):
        _with_store(settings, lambda s: s.set_paused(command == "pause", "cli"))
        print("automation paused" if command == "pause" else "automation resumed")
        return 0
    rows_: list[RunRow] = _with_store(settings, lambda s: s.runs(
        customer_ref=args.customer, limit=max(1, min(args.limit, 200))))
    print("created\tid\tpolicy\tcustomer\taction\tstatus\tinvoice\tsteps")
    for r in rows_:
        steps = ",".join(f"{s.connection}:{s.status}" for s in r.steps)
        invoice = r.invoice.label if r.invoice else "-"
        print(f"{r.created_at.isoformat(timespec='seconds')}\t{r.id}\t{r.policy_name}\t"
              f"{r.customer_ref}\t{r.action}{' (dry run)' if r.dry_run else ''}\t{r.status}\t"
              f"{invoice}\t{steps}")
    return 0


def _policy_line(p: PolicyRow) -> str:
    kinds = ",".join(p.kinds) if p.kinds else "all"
    return (f"{p.id}\t{p.name}\t{'yes' if p.enabled else 'no'}\t{p.trigger.value}\t"
            f"{p.overdue_days}\t{kinds}\t{'yes' if p.unsuspend_on_payment else 'no'}\t"
            f"{'yes' if p.dry_run else 'no'}")
