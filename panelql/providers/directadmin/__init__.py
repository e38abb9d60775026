"""DirectAdmin web-hosting panel: accounts and DNS (seed 001, upstream-apis.md §3)."""
