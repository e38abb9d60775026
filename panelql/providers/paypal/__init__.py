"""PayPal Invoicing API v2 over httpx with OAuth2 client credentials (seed 001, §6b)."""
