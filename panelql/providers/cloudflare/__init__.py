"""Cloudflare API v4, DNS zones and records (upstream-apis.md §5b)."""
