"""Stripe invoices through the stripe library's async client
(stripe-python 16.1 and the API version it pins)."""
