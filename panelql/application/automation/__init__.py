"""Billing-driven automation: policies that suspend, unsuspend and terminate a customer's
services across every panel when invoices go overdue, fail, are disputed, are paid, or the
customer cancels.

    services.py  which services of a customer a policy acts on
    steps.py     what one step does to one service (suspend, unsuspend, terminate), with holds
    runner.py    runs a run: one Operation, a step per service, retries with backoff, leases
    engine.py    triggers: bus events (webhooks, watcher), the scheduled pass, cancellations
    policies.py  managing policies and the global pause (GraphQL and the CLI)
"""
