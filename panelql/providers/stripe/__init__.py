"""Stripe invoices through the stripe library's async client (seed 001, upstream-apis.md §6)."""
