"""Cloudflare API v4, DNS zones and records (cloudflare/api-schemas ``openapi.json`` @65061ff9)."""
