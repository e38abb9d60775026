"""PowerDNS raw values → normalised enums, and rrsets ↔ one record per rrset entry.

PowerDNS has no zone status: every configured zone is served. The zone ``kind`` is the raw
value; a secondary zone that has never been transferred (``serial == 0``) has nothing to serve
yet and is reported as PENDING. Record contents are in zone-file form (absolute names with a
trailing dot, MX/SRV priority inside the content, TXT quoted); the gateway's form has no
trailing dots, a separate priority and unquoted TXT.
"""

from __future__ import annotations

import hashlib

from panelql.domain.status import DnsZoneStatus

# zone.kind (case-insensitive; 4.x answers "Native", "Master", "Slave", "Producer", "Consumer")
ZONE_STATUS: dict[str, DnsZoneStatus] = {
    "native": DnsZoneStatus.ACTIVE,
    "master": DnsZoneStatus.ACTIVE,
    "primary": DnsZoneStatus.ACTIVE,
    "slave": DnsZoneStatus.ACTIVE,
    "secondary": DnsZoneStatus.ACTIVE,
    "producer": DnsZoneStatus.ACTIVE,
    "consumer": DnsZoneStatus.ACTIVE,
}
SECONDARY_KINDS = frozenset({"slave", "secondary", "consumer"})

HOST_TYPES = frozenset({"CNAME", "NS", "PTR", "DNAME", "ALIAS"})
PRIORITY_TYPES = frozenset({"MX", "SRV"})


def zone_status(kind: str | None, serial: object) -> DnsZoneStatus:
    if kind is not None and kind.lower() in SECONDARY_KINDS and serial == 0:
        return DnsZoneStatus.PENDING
    return ZONE_STATUS.get((kind or "").lower(), DnsZoneStatus.UNKNOWN)


def record_id(name: str, rtype: str, content: str) -> str:
    """Stable id of one rrset entry: PowerDNS records have no ids of their own."""
    digest = hashlib.blake2s(f"{name.lower()}|{rtype}|{content}".encode(), digest_size=10)
    return digest.hexdigest()


def absolute(name: str, zone: str) -> str:
    """Any of "@", "www", "www.example.org", "www.example.org." → "www.example.org."."""
    zone = zone.rstrip(".").lower()
    name = name.strip().rstrip(".").lower()
    if name in ("", "@") or name == zone:
        return f"{zone}."
    if name.endswith(f".{zone}"):
        return f"{name}."
    return f"{name}.{zone}."


def split_content(rtype: str, content: str) -> tuple[str, int | None]:
    """Zone-file content → (gateway content, priority)."""
    priority: int | None = None
    if rtype in PRIORITY_TYPES:
        head, _, rest = content.partition(" ")
        if head.isdigit():
            priority, content = int(head), rest
    if rtype in HOST_TYPES or rtype in PRIORITY_TYPES:
        content = content.rstrip(".")
    if rtype == "TXT" and len(content) >= 2 and content[0] == content[-1] == '"':
        content = content[1:-1].replace('\\"', '"')
    return content, priority


def join_content(rtype: str, content: str, priority: int | None) -> str:
    """Gateway content (+ priority) → zone-file content PowerDNS accepts."""
    content = content.strip()
    if (rtype in HOST_TYPES or rtype in PRIORITY_TYPES) and not content.endswith("."):
        content = f"{content}."
    if rtype == "TXT" and not (len(content) >= 2 and content[0] == content[-1] == '"'):
        content = '"' + content.replace('"', '\\"') + '"'
    if rtype in PRIORITY_TYPES:
        content = f"{priority if priority is not None else 10} {content}"
    return content
