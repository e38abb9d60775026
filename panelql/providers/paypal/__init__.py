"""PayPal Invoicing API v2 over httpx with OAuth2 client credentials
(paypal/paypal-rest-api-specifications ``openapi/invoicing_v2.json`` @ec4d8f36)."""
