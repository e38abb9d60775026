"""Cloudflare DNS records: the gateway's content string ↔ Cloudflare's structured ``data``.

For the types below the v4 API takes the record's parts as a ``data`` object and treats
``content`` as read-only (cloudflare-v4.openapi.json @65061ff9, ``dns-records_<TYPE>Record``:
``required: [type, name, data]``, ``content.readOnly``). The gateway keeps one content string
per record, in zone-file (presentation) form, with the priority of SRV and URI in the separate
``priority`` field as for MX. Writes parse that string into ``data``; reads rebuild it from
``data`` (falling back to Cloudflare's formatted ``content``).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from panelql.providers.errors import InvalidRequest

Data = dict[str, Any]


def _words(content: str, count: int, rtype: str, shape: str) -> list[str]:
    try:
        words = shlex.split(content)
    except ValueError:
        words = []
    if len(words) < count:
        raise InvalidRequest(f"{rtype} content must look like {shape!r}",
                             fields={"content": "malformed"})
    return [*words[:count - 1], " ".join(words[count - 1:])]


def _int(value: str, rtype: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidRequest(f"{rtype} content has {value!r} where a number belongs",
                             fields={"content": "malformed"}) from None


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _numbered(rtype: str, names: tuple[str, ...], text_field: str) -> tuple[
        Callable[[str, int | None], Data], Callable[[Data], str]]:
    """Types made of numbers and one trailing text field (DS, DNSKEY, TLSA, SSHFP…)."""
    shape = " ".join(names)

    def parse(content: str, priority: int | None) -> Data:
        words = _words(content, len(names), rtype, shape)
        data: Data = {n: _int(w, rtype) for n, w in zip(names[:-1], words[:-1], strict=True)}
        data[text_field] = words[-1].replace(" ", "")
        return data

    def show(data: Data) -> str:
        return " ".join(str(_num(data.get(n))) for n in names[:-1]) + f" {data.get(text_field)}"

    return parse, show


def _num(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _caa(content: str, priority: int | None) -> Data:
    flags, tag, value = _words(content, 3, "CAA", '0 issue "ca.example"')
    return {"flags": _int(flags, "CAA"), "tag": tag, "value": value}


def _srv(content: str, priority: int | None) -> Data:
    weight, port, target = _words(content, 3, "SRV", "weight port target")
    return {"priority": priority if priority is not None else 10,
            "weight": _int(weight, "SRV"), "port": _int(port, "SRV"),
            "target": target.rstrip(".")}


def _svcb(rtype: str) -> Callable[[str, int | None], Data]:
    def parse(content: str, priority: int | None) -> Data:
        words = content.split(None, 2)
        if len(words) < 2:
            raise InvalidRequest(f"{rtype} content must look like 'priority target [params]'",
                                 fields={"content": "malformed"})
        return {"priority": _int(words[0], rtype), "target": words[1],
                "value": words[2] if len(words) > 2 else ""}
    return parse


def _naptr(content: str, priority: int | None) -> Data:
    order, pref, flags, service, regex, replacement = _words(
        content, 6, "NAPTR", 'order preference "flags" "service" "regex" replacement')
    return {"order": _int(order, "NAPTR"), "preference": _int(pref, "NAPTR"), "flags": flags,
            "service": service, "regex": regex, "replacement": replacement}


def _uri(content: str, priority: int | None) -> Data:
    weight, target = _words(content, 2, "URI", 'weight "target"')
    return {"weight": _int(weight, "URI"), "target": target}


def _loc(content: str, priority: int | None) -> Data:
    """RFC 1876 form: d [m [s]] N|S d [m [s]] E|W alt[m] [size[m] [hp[m] [vp[m]]]]."""
    words = content.replace("m", " ").split()
    data: Data = {}
    try:
        for axis, directions in (("lat", "NS"), ("long", "EW")):
            parts = []
            while words and words[0].upper() not in directions:
                parts.append(float(words.pop(0)))
            direction = words.pop(0).upper()
            if not 1 <= len(parts) <= 3 or direction not in directions:
                raise ValueError
            parts += [0.0] * (3 - len(parts))
            data[f"{axis}_degrees"], data[f"{axis}_minutes"] = int(parts[0]), int(parts[1])
            data[f"{axis}_seconds"], data[f"{axis}_direction"] = parts[2], direction
        numbers = [float(w) for w in words]
    except (ValueError, IndexError):
        raise InvalidRequest("LOC content must look like '37 46 46 N 122 23 35 W 0m 1m 10000m "
                             "10m'", fields={"content": "malformed"}) from None
    if not numbers:
        raise InvalidRequest("LOC content needs an altitude", fields={"content": "malformed"})
    for key, value in zip(("altitude", "size", "precision_horz", "precision_vert"), numbers,
                          strict=False):
        data[key] = value
    return data


def _show_loc(data: Data) -> str:
    def coord(axis: str) -> str:
        return (f"{_num(data.get(f'{axis}_degrees', 0))} {_num(data.get(f'{axis}_minutes', 0))} "
                f"{_num(data.get(f'{axis}_seconds', 0))} {data.get(f'{axis}_direction', '')}")
    sizes = " ".join(f"{_num(data.get(k, 0))}m" for k in ("size", "precision_horz",
                                                           "precision_vert"))
    return f"{coord('lat')} {coord('long')} {_num(data.get('altitude', 0))}m {sizes}"


_DS = _numbered("DS", ("key_tag", "algorithm", "digest_type", "digest"), "digest")
_DNSKEY = _numbered("DNSKEY", ("flags", "protocol", "algorithm", "public_key"), "public_key")
_CERT = _numbered("CERT", ("type", "key_tag", "algorithm", "certificate"), "certificate")
_TLSA = _numbered("TLSA", ("usage", "selector", "matching_type", "certificate"), "certificate")
_SMIMEA = _numbered("SMIMEA", ("usage", "selector", "matching_type", "certificate"),
                    "certificate")
_SSHFP = _numbered("SSHFP", ("algorithm", "type", "fingerprint"), "fingerprint")

PARSERS: dict[str, Callable[[str, int | None], Data]] = {
    "CAA": _caa, "SRV": _srv, "DS": _DS[0], "DNSKEY": _DNSKEY[0], "CERT": _CERT[0],
    "TLSA": _TLSA[0], "SMIMEA": _SMIMEA[0], "SSHFP": _SSHFP[0], "HTTPS": _svcb("HTTPS"),
    "SVCB": _svcb("SVCB"), "NAPTR": _naptr, "URI": _uri, "LOC": _loc,
}
SHOWERS: dict[str, Callable[[Data], str]] = {
    "CAA": lambda d: f"{_num(d.get('flags', 0))} {d.get('tag')} {_quote(str(d.get('value')))}",
    "SRV": lambda d: f"{_num(d.get('weight'))} {_num(d.get('port'))} {d.get('target')}",
    "DS": _DS[1], "DNSKEY": _DNSKEY[1], "CERT": _CERT[1], "TLSA": _TLSA[1],
    "SMIMEA": _SMIMEA[1], "SSHFP": _SSHFP[1],
    "HTTPS": lambda d: f"{_num(d.get('priority'))} {d.get('target')} {d.get('value') or ''}"
    .rstrip(),
    "SVCB": lambda d: f"{_num(d.get('priority'))} {d.get('target')} {d.get('value') or ''}"
    .rstrip(),
    "NAPTR": lambda d: (f"{_num(d.get('order'))} {_num(d.get('preference'))} "
                        f"{_quote(str(d.get('flags', '')))} {_quote(str(d.get('service', '')))} "
                        f"{_quote(str(d.get('regex', '')))} {d.get('replacement')}"),
    "URI": lambda d: f"{_num(d.get('weight'))} {_quote(str(d.get('target')))}",
    "LOC": _show_loc,
}
STRUCTURED = frozenset(PARSERS)
# Types whose priority is a top-level field of the record (dns-records_MXRecord/URIRecord).
TOP_PRIORITY = frozenset({"MX", "URI"})


def to_data(rtype: str, content: str, priority: int | None) -> Data:
    return PARSERS[rtype](content.strip(), priority)


def from_data(rtype: str, data: Any, content: str) -> str:
    if rtype in SHOWERS and isinstance(data, dict) and data:
        return SHOWERS[rtype](data)
    return content


def priority_of(rtype: str, row: dict[str, Any]) -> int | None:
    """MX and URI carry it at the top; SRV inside ``data``."""
    value = row.get("priority")
    if rtype == "SRV" and isinstance(row.get("data"), dict):
        value = row["data"].get("priority", value)
    return _num(value) if isinstance(value, int | float) else None
