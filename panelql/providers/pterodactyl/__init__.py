"""Pterodactyl Panel (pterodactyl/panel @706db62c): Application and Client APIs."""
