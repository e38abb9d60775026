"""What the adapter reads of a Catalyst server object, decoded straight from the wire.

``GET /api/servers`` answers every server with its node, location, template, environment,
connection and permissions inlined (routes/servers @747660b5 serializes about 60 keys, 2 KB a
server). The gateway maps 21 of them. Decoding the whole list into dicts took most of a
1,000-server query's CPU; msgspec decodes only these fields and skips the rest without building
them. Every field is ``Any`` (the mapping in adapter.py checks and converts each value, as it
does for a dict), absent fields are ``UNSET`` so "absent" and "null" stay apart where the
mapping cares (metrics, ``id``). A body this does not fit (not JSON, no ``data`` list, an item
that is not an object) is decoded and checked the general way, which names what was wrong.
"""

from __future__ import annotations

from typing import Any

import msgspec

UNSET: Any = msgspec.UNSET


class WireServer(msgspec.Struct):
    id: Any = UNSET
    name: Any = ""
    status: Any = None
    description: Any = None
    nodeId: Any = None
    ownerId: Any = None
    suspendedAt: Any = None
    suspensionReason: Any = None
    allocatedMemoryMb: Any = None
    allocatedCpuCores: Any = None
    allocatedDiskMb: Any = None
    memoryUsageMb: Any = UNSET
    cpuPercent: Any = UNSET
    diskUsageMb: Any = None
    diskTotalMb: Any = None
    playerCount: Any = None
    uptime: Any = None
    createdAt: Any = None
    connection: Any = None
    primaryIp: Any = None
    primaryPort: Any = None


class WireServerList(msgspec.Struct):
    data: list[WireServer]


SERVER_LIST = msgspec.json.Decoder(WireServerList)


def server_of(raw: dict[str, Any]) -> WireServer:
    """A server object already decoded as a dict (the create route's answer)."""
    return msgspec.convert(raw, WireServer)
