"""ProxmoxWP WordPress-site backend (seeds 003/004, upstream-apis.md §11)."""
