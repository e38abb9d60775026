"""ISPConfig raw values → normalised enums and errors, plus the name conventions of ``dns_rr``.

ISPConfig answers every call with HTTP 200; failures are ``{"code":"remote_fault","message":…}``
where the message is the only machine-readable part (the SoapFault's own code is dropped by the
JSON handler). So faults are classified by message, with one ordered pattern table.
"""

from __future__ import annotations

import re

from panelql.domain.status import DnsZoneStatus
from panelql.providers.errors import (
    AuthenticationFailed,
    CapabilityNotSupported,
    Conflict,
    InvalidRequest,
    NotFound,
    ProviderError,
    Unavailable,
)

# dns_soa.active
ZONE_STATUS: dict[str, DnsZoneStatus] = {
    "Y": DnsZoneStatus.ACTIVE,
    "N": DnsZoneStatus.INACTIVE,
}

# Record types this adapter writes; each has dns_<type>_add/update/delete. Reads pass every type.
WRITABLE_TYPES = frozenset({"A", "AAAA", "CNAME", "MX", "NS", "TXT"})
# Types whose data is a host name (stored absolute, with a trailing dot).
HOST_TYPES = frozenset({"CNAME", "MX", "NS", "PTR", "SRV", "ALIAS"})


class SessionExpired(AuthenticationFailed):
    """The remote session timed out (30 min idle); the adapter logs in again once."""


# First match wins. Messages come from remoting.inc.php / remote.d/dns.inc.php / tform validators.
FAULTS: list[tuple[re.Pattern[str], type[ProviderError]]] = [
    (re.compile(r"session is expired|sessionid is empty", re.I), SessionExpired),
    (re.compile(r"login failed|login is not allowed|login (username|password) is empty", re.I),
     AuthenticationFailed),
    (re.compile(r"permissions? to access this function|permission denied", re.I),
     AuthenticationFailed),
    (re.compile(r"no domain id|not found|does not exist", re.I), NotFound),
    (re.compile(r"duplicate|already exist|error_unique|already a record", re.I), Conflict),
    (re.compile(r"under maintenance", re.I), Unavailable),
    (re.compile(r"^database error", re.I), Unavailable),
]

# json_handler codes other than remote_fault.
CODE_ERRORS: dict[str, type[ProviderError]] = {
    "invalid_method": CapabilityNotSupported,
    "invalid_class": CapabilityNotSupported,
    "invalid_data": InvalidRequest,
}

_TAGS = re.compile(r"<[^>]+>")


def clean_message(message: str) -> str:
    """Fault text without the HTML line breaks tform appends, and never an SQL statement."""
    text = " ".join(_TAGS.sub(" ", message).split())
    # database_error faults append the failing SQL statement: keep only the first sentence.
    if re.search(r"\b(SELECT|INSERT|UPDATE|DELETE)\b .*\b(FROM|INTO|SET|WHERE)\b", text):
        return "database error in ISPConfig"
    return text or "ISPConfig rejected the request"


def classify_fault(code: str, message: str) -> type[ProviderError]:
    if code != "remote_fault":
        return CODE_ERRORS.get(code, InvalidRequest)
    for pattern, error in FAULTS:
        if pattern.search(message):
            return error
    # Everything else is a data_processing_error from the form validators: our input was wrong.
    return InvalidRequest


# -- names ----------------------------------------------------------------------------------------
def zone_name(origin: str) -> str:
    return origin.rstrip(".").lower()


def record_fqdn(name: str, zone: str) -> str:
    """``dns_rr.name`` is relative ("www"), absolute ("www.example.com.") or the apex ("@", "")."""
    if name in ("", "@"):
        return zone
    if name.endswith("."):
        return name.rstrip(".").lower()
    return f"{name}.{zone}".lower()


def stored_name(name: str, zone: str) -> str:
    """The absolute form ISPConfig stores: "www.example.com." (any input form accepted)."""
    name = name.strip().rstrip(".").lower()
    if name in ("", "@") or name == zone:
        return f"{zone}."
    if name.endswith(f".{zone}"):
        return f"{name}."
    return f"{name}.{zone}."


def read_data(rtype: str, data: str) -> str:
    return data.rstrip(".") if rtype in HOST_TYPES else data


def stored_data(rtype: str, content: str) -> str:
    if rtype in HOST_TYPES and "." in content and not content.endswith("."):
        return f"{content}."
    return content
