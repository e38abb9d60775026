"""PowerDNS Authoritative HTTP API
(PowerDNS/pdns ``docs/http-api/openapi/authoritative-api-openapi.yaml`` @20096dc7)."""
