"""Catalyst game panel (seed 000, upstream-apis.md §7)."""
