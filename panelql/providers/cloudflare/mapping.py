"""Cloudflare raw values → normalised enums, and its error codes → the provider error tree.

Cloudflare pairs an HTTP status with ``errors[].code``; the code is the more specific of the two
(a duplicate zone is HTTP 400 with code 1061, which is a conflict, not bad input), so the code
table is consulted first and the HTTP status is the fallback.
"""

from __future__ import annotations

from panelql.domain.status import DnsZoneStatus
from panelql.providers.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidRequest,
    NotFound,
    ProviderError,
    RateLimited,
)

# zone.status
ZONE_STATUS: dict[str, DnsZoneStatus] = {
    "active": DnsZoneStatus.ACTIVE,
    "pending": DnsZoneStatus.PENDING,  # waiting for the registrar to point at Cloudflare's NS
    "initializing": DnsZoneStatus.PENDING,  # just created, DNS scan running
    "moved": DnsZoneStatus.INACTIVE,  # nameservers moved away from Cloudflare
    "deleted": DnsZoneStatus.INACTIVE,
    "deactivated": DnsZoneStatus.INACTIVE,
}

# errors[].code → error class (first matching code of a response wins).
ERROR_CODES: dict[int, type[ProviderError]] = {
    971: RateLimited,  # Please wait and consider throttling your request speed
    1000: AuthenticationFailed,  # Invalid API Token
    6111: AuthenticationFailed,  # Invalid format for Authorization header
    9103: AuthenticationFailed,  # Unknown X-Auth-Key or X-Auth-Email
    9106: AuthenticationFailed,  # Missing X-Auth-Key / X-Auth-Email
    9109: AuthenticationFailed,  # Invalid access token / unauthorized for the resource
    10000: AuthenticationFailed,  # Authentication error
    7000: NotFound,  # No route for that URI
    7003: NotFound,  # Could not route to …, perhaps your object identifier is invalid?
    1001: NotFound,  # Invalid zone identifier
    81044: NotFound,  # Record does not exist
    1061: Conflict,  # <zone> already exists
    81053: Conflict,  # An A, AAAA, or CNAME record with that host already exists
    81057: Conflict,  # The record already exists
    81058: Conflict,  # A record with the same settings already exists
    1049: InvalidRequest,  # <name> is not a registered domain
    1004: InvalidRequest,  # DNS validation error
    9000: InvalidRequest,  # DNS name is invalid
    9005: InvalidRequest,  # Content for A record must be a valid IPv4 address
    9006: InvalidRequest,  # Content for AAAA record must be a valid IPv6 address
    9007: InvalidRequest,  # Content for CNAME record is invalid
    9020: InvalidRequest,  # Invalid DNS record type
    9021: InvalidRequest,  # Invalid TTL
}


def error_class(codes: list[int]) -> type[ProviderError] | None:
    for code in codes:
        if code in ERROR_CODES:
            return ERROR_CODES[code]
    return None
