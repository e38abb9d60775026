"""VirtFusion VPS platform, API v1."""
