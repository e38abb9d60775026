"""Input checks with field-level messages, run before any upstream call (BAD_USER_INPUT)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from panelql.application.errors import BadUserInput

_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,191}$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}\.?$)(?:(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\.)*(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\.?$")
_USERNAME = re.compile(r"^[a-z][a-z0-9_]{2,15}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "TXT", "SRV", "CAA")


def name(value: str, field: str = "name") -> str:
    value = value.strip()
    if not _NAME.match(value):
        raise BadUserInput(f"{field} must be 1 to 191 printable characters", field=field)
    return value


def in_range(value: float | None, low: float, high: float, field: str) -> None:
    if value is not None and not (low <= value <= high):
        raise BadUserInput(f"{field} must be between {low:g} and {high:g}", field=field)


def resources(memory_mb: int | None, cpu_cores: float | None, disk_mb: int | None) -> None:
    in_range(memory_mb, 128, 4_194_304, "memoryMb")
    in_range(cpu_cores, 0.1, 1024, "cpuCores")
    in_range(disk_mb, 512, 1_073_741_824, "diskMb")
    if memory_mb is None and cpu_cores is None and disk_mb is None:
        raise BadUserInput("give at least one of memoryMb, cpuCores, diskMb", field="resources")


def ports(values: list[int]) -> None:
    for port in values:
        in_range(port, 1, 65535, "ports")


def reason(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > 500:
        raise BadUserInput("reason must be at most 500 characters", field="reason")
    return value or None


def username(value: str) -> str:
    if not _USERNAME.match(value):
        raise BadUserInput(
            "username must be 3 to 16 lowercase letters, digits or _, starting with a letter",
            field="username")
    return value


def email(value: str | None) -> str | None:
    if value is not None and not _EMAIL.match(value):
        raise BadUserInput(f"{value!r} is not an email address", field="email")
    return value


def password(value: str, field: str = "password") -> str:
    if len(value) < 8 or len(value) > 128:
        raise BadUserInput(f"{field} must be 8 to 128 characters", field=field)
    return value


def hostname(value: str, field: str) -> str:
    if not _HOSTNAME.match(value):
        raise BadUserInput(f"{value!r} is not a valid host name", field=field)
    return value


# Record types beyond RECORD_TYPES that a provider takes (in presentation form for PowerDNS,
# as structured ``data`` for Cloudflare: providers/cloudflare/records.py).
EXTRA_RECORD_TYPES: dict[str, tuple[str, ...]] = {
    "cloudflare": ("PTR", "CERT", "DNSKEY", "DS", "HTTPS", "LOC", "NAPTR", "SMIMEA", "SSHFP",
                   "SVCB", "TLSA", "URI"),
    "powerdns": ("PTR", "CERT", "DNSKEY", "DS", "HTTPS", "LOC", "NAPTR", "SMIMEA", "SSHFP",
                 "SVCB", "TLSA", "URI"),
}


@dataclass(frozen=True)
class TtlRule:
    low: int
    high: int
    automatic: int | None = None  # a value outside the range that means "let the provider pick"

    def check(self, ttl: int | None, provider: str) -> None:
        if ttl is None or ttl == self.automatic or self.low <= ttl <= self.high:
            return
        auto = f"{self.automatic} (automatic) or " if self.automatic is not None else ""
        raise BadUserInput(f"ttl must be {auto}between {self.low} and {self.high} for "
                           f"{provider}", field="ttl")


# Each provider's own TTL limits; DEFAULT_TTL_RULE for the others.
TTL_RULES: dict[str, TtlRule] = {
    # Cloudflare API v4, dns-records ttl: "Value must be between 60 and 86400, with the
    # minimum reduced to 30 for Enterprise zones"; 1 means automatic
    # (cloudflare-v4.openapi.json, dns-records_ttl).
    "cloudflare": TtlRule(60, 86400, automatic=1),
    # PowerDNS stores any 32-bit TTL; RFC 2181 §8 caps it at 2^31 - 1.
    "powerdns": TtlRule(0, 2_147_483_647),
}
DEFAULT_TTL_RULE = TtlRule(60, 86400 * 7)
MAX_TXT_STRING = 255  # bytes in one DNS character-string (RFC 1035 §3.3)
_LINE_BREAKS = re.compile(r"[\r\n\x00\u2028\u2029\x85]")


def dns_record(kind: str, record_name: str, content: str, ttl: int | None,
               priority: int | None, *, provider: str = "",
               txt_strings: list[str] | None = None) -> str:
    kind = kind.upper()
    allowed = RECORD_TYPES + EXTRA_RECORD_TYPES.get(provider, ())
    if kind not in allowed:
        raise BadUserInput(f"type must be one of {', '.join(allowed)}", field="type")
    if record_name not in ("@", "") and record_name != "*":
        hostname(record_name.removeprefix("*."), "name")
    TTL_RULES.get(provider, DEFAULT_TTL_RULE).check(ttl, provider or "this provider")
    if txt_strings is not None:
        content = _txt_strings(kind, content, txt_strings)
    elif not content.strip():
        raise BadUserInput("content is required", field="content")
    if _LINE_BREAKS.search(content):
        # A line break ends a record in zone text (DirectAdmin, ISPConfig, BIND files): one in
        # TXT or CAA content would write a second, unasked-for record.
        raise BadUserInput("content must not contain line breaks or NUL characters",
                           field="txtStrings" if txt_strings is not None else "content")
    try:
        if kind == "A":
            ipaddress.IPv4Address(content)
        elif kind == "AAAA":
            ipaddress.IPv6Address(content)
    except ValueError:
        raise BadUserInput(f"{content!r} is not a valid {kind} address", field="content") from None
    if kind in ("CNAME", "NS", "MX"):
        hostname(content, "content")
    if kind == "MX":
        if priority is None:
            raise BadUserInput("MX records need a priority", field="priority")
        in_range(priority, 0, 65535, "priority")
    if kind == "TXT" and not (1 <= len(content) <= 4096):
        raise BadUserInput("TXT content must be 1 to 4096 characters", field="content")
    return kind


def _txt_strings(kind: str, content: str, strings: list[str]) -> str:
    """txtStrings: TXT only, at least one, each at most 255 bytes; content, when given too,
    must be their concatenation. Returns that concatenation."""
    if kind != "TXT":
        raise BadUserInput("txtStrings is for TXT records only", field="txtStrings")
    if not strings:
        raise BadUserInput("txtStrings needs at least one string", field="txtStrings")
    for value in strings:
        if len(value.encode()) > MAX_TXT_STRING:
            raise BadUserInput(f"each of txtStrings must be at most {MAX_TXT_STRING} bytes",
                               field="txtStrings")
    joined = "".join(strings)
    if content and content != joined:
        raise BadUserInput("content must be the concatenation of txtStrings (or be left out)",
                           field="content")
    return joined
