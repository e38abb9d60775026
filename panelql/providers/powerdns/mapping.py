"""PowerDNS raw values → normalised enums, and rrsets ↔ one record per rrset entry.

PowerDNS has no zone status: every configured zone is served. The zone ``kind`` is the raw
value; a secondary zone that has never been transferred (``serial == 0``) has nothing to serve
yet and is reported as PENDING. Record contents are in zone-file (presentation) form: absolute
names with a trailing dot, MX/SRV priority inside the content, TXT as one or more quoted
character-strings. The gateway's form has no trailing dots, a separate priority, and TXT as its
decoded strings (``txt_strings``) plus their concatenation (``content``, what a DKIM or SPF
reader sees).

TXT escaping follows PowerDNS's own writer and reader, so what we send is what it lists back:
``pdns/dnsparser.cc`` ``txtEscape`` @20096dc7 (bytes < 32 or >= 127 as ``\\DDD``, ``"`` and
``\\`` behind a backslash) and ``pdns/rcpgenerator.cc`` ``RecordTextReader::xfrText``
@20096dc7 (quoted or bare words; ``\\DDD`` is a byte, ``\\X`` is X). One character-string holds
at most 255 bytes (RFC 1035 §3.3), so longer text is cut into several.
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
TEXT_TYPES = frozenset({"TXT", "SPF"})
MAX_STRING = 255  # bytes in one DNS character-string


class OutOfZone(ValueError):
    """A fully-qualified name that is not inside the zone."""


def zone_status(kind: str | None, serial: object) -> DnsZoneStatus:
    if kind is not None and kind.lower() in SECONDARY_KINDS and serial == 0:
        return DnsZoneStatus.PENDING
    return ZONE_STATUS.get((kind or "").lower(), DnsZoneStatus.UNKNOWN)


def record_id(name: str, rtype: str, content: str) -> str:
    """Stable id of one rrset entry: PowerDNS records have no ids of their own."""
    digest = hashlib.blake2s(f"{name.lower()}|{rtype}|{content}".encode(), digest_size=10)
    return digest.hexdigest()


def absolute(name: str, zone: str) -> str:
    """"@", "www", "www.example.org" or "www.example.org." → "www.example.org.".

    A name with a trailing dot is already absolute: outside the zone it is refused
    (:class:`OutOfZone`) instead of being read as a label under the zone.
    """
    zone = zone.rstrip(".").lower()
    name = name.strip().lower()
    qualified = name.endswith(".") and name != "."
    name = name.rstrip(".")
    if name in ("", "@") or name == zone:
        return f"{zone}."
    if name.endswith(f".{zone}"):
        return f"{name}."
    if qualified:
        raise OutOfZone(f"{name}. is not inside the zone {zone}.")
    return f"{name}.{zone}."


# -- TXT presentation form --------------------------------------------------------------------
def escape_text(value: str) -> str:
    """One character-string, quoted, escaped as PowerDNS writes it."""
    out = []
    for byte in value.encode():
        if byte < 32 or byte >= 127:
            out.append(f"\\{byte:03d}")
        elif byte in (0x22, 0x5C):  # " and \
            out.append("\\" + chr(byte))
        else:
            out.append(chr(byte))
    return '"' + "".join(out) + '"'


def parse_text(raw: str) -> list[bytes]:
    """Zone-file TXT content → its character-strings, as bytes."""
    data, i, strings = raw.encode(), 0, []
    while i < len(data):
        while i < len(data) and data[i] in b" \t":
            i += 1
        if i >= len(data):
            break
        quoted = data[i] == 0x22
        i += 1 if quoted else 0
        delimiters = b'"' if quoted else b" \t"
        buf = bytearray()
        while i < len(data) and data[i] not in delimiters:
            if data[i] == 0x5C and i + 1 < len(data):
                digits = data[i + 1:i + 4]
                if len(digits) == 3 and digits.isdigit() and int(digits) < 256:
                    buf.append(int(digits))
                    i += 4
                    continue
                buf.append(data[i + 1])
                i += 2
                continue
            buf.append(data[i])
            i += 1
        i += 1 if quoted else 0  # the closing quote
        strings.append(bytes(buf))
    return strings


def text_strings(raw: str) -> list[str]:
    return [s.decode(errors="replace") for s in parse_text(raw)]


def text_value(raw: str) -> str:
    """What a resolver's reader sees: the strings joined (DKIM and SPF are read this way)."""
    return b"".join(parse_text(raw)).decode(errors="replace")


def chunk_text(value: str) -> list[str]:
    """Cut text into character-strings of at most 255 bytes, never inside a character."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for char in value:
        width = len(char.encode())
        if size + width > MAX_STRING:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    chunks.append("".join(current))
    return chunks


def join_text(strings: list[str]) -> str:
    return " ".join(escape_text(s) for s in strings)


# -- content ----------------------------------------------------------------------------------
def split_content(rtype: str, content: str) -> tuple[str, int | None]:
    """Zone-file content → (gateway content, priority)."""
    priority: int | None = None
    if rtype in PRIORITY_TYPES:
        head, _, rest = content.partition(" ")
        if head.isdigit():
            priority, content = int(head), rest
    if rtype in HOST_TYPES or rtype in PRIORITY_TYPES:
        content = content.rstrip(".")
    if rtype in TEXT_TYPES:
        content = text_value(content)
    return content, priority


def join_content(rtype: str, content: str, priority: int | None,
                 strings: list[str] | None = None) -> str:
    """Gateway content (+ priority, or TXT strings) → zone-file content PowerDNS accepts."""
    if rtype in TEXT_TYPES:
        return join_text(strings if strings is not None else chunk_text(content))
    content = content.strip()
    if (rtype in HOST_TYPES or rtype in PRIORITY_TYPES) and not content.endswith("."):
        content = f"{content}."
    if rtype in PRIORITY_TYPES:
        content = f"{priority if priority is not None else 10} {content}"
    return content
