"""Placement: which node should a new server go to, as the seeds' billing flows decide by hand.

Online nodes only, in the requested region, with room for the requested memory and disk (or a
free account slot); least loaded first (the share of memory already given away, then of CPU).
Nodes whose panel reports no capacity for a dimension are not excluded on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from panelql.application.context import Context
from panelql.application.filters import NodeFilter
from panelql.application.queries import list_nodes
from panelql.domain.records import NodeRecord
from panelql.domain.status import NodeStatus


@dataclass
class PlacementRequest:
    memory_mb: int | None = None
    cpu_cores: float | None = None
    disk_mb: int | None = None
    region: str | None = None
    providers: list[str] | None = None
    kinds: list[str] | None = None


@dataclass
class Candidate:
    node: NodeRecord
    load: float  # 0 = empty, 1 = full


def _fits(total: float | None, used: float | None, wanted: float | None) -> bool:
    return total is None or wanted is None or total - (used or 0) >= wanted


def _share(total: float | None, used: float | None) -> float:
    return 1.0 if not total else (used or 0) / total


def rank(nodes: list[NodeRecord], request: PlacementRequest) -> list[Candidate]:
    candidates = []
    for node in nodes:
        cap, used = node.capacity, node.allocated
        if node.status is not NodeStatus.ONLINE:
            continue
        if request.region is not None and node.region != request.region:
            continue
        slots = node.account_slots
        # CPU is overcommitted on every panel we know, so it only breaks ties (below);
        # memory, disk and account slots are hard limits.
        if not (_fits(cap.memory_mb, used.memory_mb, request.memory_mb)
                and _fits(cap.disk_mb, used.disk_mb, request.disk_mb)
                and (slots is None or slots.used < slots.capacity)):
            continue
        # Hosting servers count accounts; compute nodes count memory (and disk where known).
        load = (_share(slots.capacity, slots.used) if slots is not None else
                max(_share(cap.memory_mb, used.memory_mb),
                    _share(cap.disk_mb, used.disk_mb) if cap.disk_mb else 0.0))
        candidates.append(Candidate(node, round(load, 4)))
    return sorted(candidates, key=lambda c: (
        c.load, _share(c.node.capacity.cpu_cores, c.node.allocated.cpu_cores),
        c.node.connection, c.node.id))


async def candidates(ctx: Context, request: PlacementRequest) -> list[Candidate]:
    nodes = await list_nodes(ctx, NodeFilter(providers=request.providers, kinds=request.kinds))
    return rank(nodes, request)
