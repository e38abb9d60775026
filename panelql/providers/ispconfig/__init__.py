"""ISPConfig 3 remote JSON API, DNS module (seed 004, upstream-apis.md §5a)."""
