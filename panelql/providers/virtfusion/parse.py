"""Reading VirtFusion payloads: error bodies, timestamps, addresses and live state.

Everything here tolerates missing or mistyped fields (the list form of a server carries fewer
keys than the single GET), returning None or {} rather than raising.
"""

from __future__ import annotations

from typing import Any

from panelql.domain.records import LiveState, Usage, UsageLimits
from panelql.domain.status import ServerStatus, map_status
from panelql.providers.virtfusion.mapping import SERVER_STATUS, lifecycle_key


def read_error(body: Any) -> str | None:
    """``{"msg": …}`` (older endpoints), ``{"errors": [...]}`` or Laravel's 422 form
    ``{"message": …, "errors": {field: [...]}}``. A 401 has no body at all."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("msg"), str):
        return str(body["msg"])
    errors = body.get("errors")
    found: list[str] = []
    if isinstance(errors, list):
        found = [_error_text(item) for item in errors]
    elif isinstance(errors, dict):
        for value in errors.values():
            found.extend(_error_text(v) for v in (value if isinstance(value, list) else [value]))
    found = [text for text in found if text]
    if found:
        return "; ".join(found)
    return str(body["message"]) if isinstance(body.get("message"), str) else None


def _error_text(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        for key in ("message", "detail", "msg"):
            if isinstance(item.get(key), str):
                return str(item[key])
    return ""



def live_state(raw: dict[str, Any], source: str) -> LiveState:
    """Status of one single-GET server object: lifecycle first, then ``remoteState.state``."""
    remote = obj(raw, "remoteState")
    usage = _usage(remote, _limits(obj(obj(raw, "settings"), "resources")))
    key = lifecycle_key(raw)
    if key is not None:
        return LiveState(map_status(SERVER_STATUS, key, ServerStatus.UNKNOWN, source=source),
                         key, usage)
    power = as_str(remote.get("state"))
    return LiveState(map_status(SERVER_STATUS, power, ServerStatus.UNKNOWN, source=source),
                     power, usage)


def _usage(remote: dict[str, Any], limits: UsageLimits | None) -> Usage | None:
    """remoteState memory figures are libvirt balloon stats in KB; ``cpu`` a percentage."""
    memory = obj(remote, "memory")
    actual, unused = as_num(memory.get("actual")), as_num(memory.get("unused"))
    used_kb = actual - unused if actual is not None and unused is not None else as_num(
        memory.get("rss"))
    cpu = as_num(remote.get("cpu"))
    if used_kb is None and cpu is None and limits is None:
        return None
    return Usage(memory_mb=round(used_kb / 1024, 1) if used_kb is not None else None,
                 cpu_percent=cpu, limits=limits)


def _limits(resources: dict[str, Any]) -> UsageLimits | None:
    """``settings.resources``: memory in MB, storage and the traffic
    allowance per period in GB (0 traffic: unmetered)."""
    memory, storage = as_num(resources.get("memory")), as_num(resources.get("storage"))
    traffic = as_num(resources.get("traffic"))
    if memory is None and storage is None and traffic is None:
        return None
    return UsageLimits(memory_mb=memory, disk_mb=storage * 1024 if storage is not None else None,
                       bandwidth_mb=traffic * 1024 if traffic else None)


def addresses(network: Any) -> list[str]:
    if not isinstance(network, dict) or not isinstance(network.get("interfaces"), list):
        return []
    found: list[str] = []
    for nic in network["interfaces"]:
        if not isinstance(nic, dict):
            continue
        for ip in nic.get("ipv4") or []:
            if isinstance(ip, dict) and ip.get("address"):
                found.append(str(ip["address"]))
        for net in nic.get("ipv6") or []:
            if isinstance(net, dict) and net.get("subnet"):
                found.append(f"{net['subnet']}/{net.get('cidr', 64)}")
    return found


def obj(raw: dict[str, Any], key: str) -> dict[str, Any]:
    """A nested object, or {} when the upstream left it out or sent something else."""
    value = raw.get(key)
    return value if isinstance(value, dict) else {}


def gb(mb: int | None) -> int | None:
    return None if mb is None else max(1, -(-mb // 1024))


def as_num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def as_int(value: Any) -> int | None:
    number = as_num(value)
    return None if number is None else int(number)


def as_str(value: Any) -> str | None:
    return None if value is None else str(value)
