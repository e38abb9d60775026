"""Pterodactyl Panel (seed 001, upstream-apis.md §1): Application and Client APIs."""
