"""ISPConfig 3 remote JSON API, DNS module."""
