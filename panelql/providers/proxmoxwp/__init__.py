"""ProxmoxWP WordPress-site backend: the routes its Paymenter extension calls."""
