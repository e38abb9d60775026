"""VirtFusion VPS platform, API v1 (seed 001, upstream-apis.md §2)."""
