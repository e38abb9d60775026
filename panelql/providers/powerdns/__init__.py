"""PowerDNS Authoritative HTTP API (upstream-apis.md §5c)."""
