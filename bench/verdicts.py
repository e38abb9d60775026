"""Independent expectations for bench/ verdicts: what a panel's API forces, and how many
sequential upstream rounds a query needs, declared here and checked by
tests/e2e/test_bench_expectations.py, so a verdict compares a measurement with something the
measurement cannot move.

Calls: for the list query (``LIST_Q``: servers with node, owner and latest backup), each kind
declares every route it may call and how often, as a function of that panel's server count n.
"once" routes must be called exactly that often; per-server routes (the panel has no bulk
endpoint for them) at most n times. A route the declaration does not name, or more calls than
declared, is a regression: one GET per server where a list would do cannot hide behind a label.

Rounds: a query's dependency levels are the nesting depth of fields that need an upstream read
(``servers`` → ``node``/``owner``/``backups``: two levels). With every panel answering after L,
the critical path is levels x L, whatever the gateway does; extra sequential rounds show up as
wall time above it instead of enlarging the denominator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from graphql import FieldNode, OperationDefinitionNode, SelectionSetNode, parse


@dataclass(frozen=True)
class Route:
    count: Callable[[int], int]  # calls allowed for a panel holding n servers
    exact: bool  # True: exactly ``count(n)``; False: at most (per-server, no bulk endpoint)
    why: str


def once(why: str, times: int = 1) -> Route:
    return Route(lambda n: times, True, why)


def per_server(why: str) -> Route:
    return Route(lambda n: n, False, why)


# route keys as the simulators count them (ids folded into "*"); see panelql_sim/framework.py
LIST_Q_CALLS: dict[str, dict[str, Route]] = {
    "catalyst": {
        "GET /api/servers": once("one list of every server (catalyst-backend routes/servers.ts)"),
        "GET /api/nodes": once("one node list"),
        "GET /api/admin/users": once("owners from one user list"),
        "GET /api/servers/*/backups": per_server(
            "backups exist only under a server: no route lists them across servers"),
    },
    "pterodactyl": {
        "GET /api/application/servers": once("one page of up to 1,000 per 1,000 servers",
                                             times=1),
        "GET /api/application/nodes": once("one node list"),
        "GET /api/application/users": once("owners from one user list"),
        "GET /api/client/servers/*/resources": per_server(
            "power state lives in Wings, reachable only per server (Client API resources)"),
        "GET /api/client/servers/*/backups": per_server(
            "backups only through the Client API, per server"),
    },
    "proxmox": {
        "GET /*/json/cluster/resources": once(
            "one unfiltered read: guests, nodes and storages "
            "(pve-manager PVE/API2/Cluster.pm @14a22df3, resources: type optional)"),
        "GET /*/json/nodes/*/storage/local/content": once(
            "backup archives per node-local backup storage (two nodes)", times=2),
        "GET /*/json/nodes/*/storage/nfs-backup/content": once(
            "a shared backup storage is read once, through one node"),
        "GET /*/json/nodes/*/qemu/*/snapshot": per_server(
            "PVE has no cluster-wide snapshot list: one read per guest"),
        "GET /*/json/nodes/*/lxc/*/snapshot": per_server(
            "PVE has no cluster-wide snapshot list: one read per guest"),
    },
    "proxmoxwp": {
        "GET /sites": once("one list of sites, latest backup included"),
        "GET /nodes": once("one node list"),
    },
}

# Pterodactyl pages its Application API lists with no per_page cap (pterodactyl/panel @706db62c
# app/Http/Controllers/Api/Application/Servers/ServerController.php index:
# ``paginate($request->query('per_page') ?? 50)``, no bound); the gateway asks for 1,000 per page
# so one answer stays bounded. (A newer branch of the panel refuses per_page outside 1..100 with
# QueryValueOutOfRangeHttpException; the adapter would need 100 there.) This said 100, older
# than the adapter's page size: at N = 1,000 the bench reported one page where it expected
# three, a NO about the declaration, not the gateway.
PTERODACTYL_PAGE = 1000


def allowed(kind: str, n: int) -> dict[str, Route]:
    routes = dict(LIST_Q_CALLS[kind])
    if kind == "pterodactyl":
        pages = max(1, -(-n // PTERODACTYL_PAGE))
        routes["GET /api/application/servers"] = once(
            f"{pages} page(s) of up to {PTERODACTYL_PAGE}", times=pages)
    return routes


def call_problems(kind: str, n: int, measured: dict[str, int]) -> list[str]:
    """Every way ``measured`` (route -> count, one LIST_Q) breaks the declaration; [] if none."""
    problems = []
    expected = allowed(kind, n)
    for route, count in sorted(measured.items()):
        rule = expected.get(route)
        if rule is None:
            problems.append(f"{route} x{count}: not a call the API forces")
        elif rule.exact and count != rule.count(n):
            problems.append(f"{route} x{count}, declared {rule.count(n)}")
        elif not rule.exact and count > rule.count(n):
            problems.append(f"{route} x{count} for {n} servers")
    for route, rule in expected.items():
        if rule.exact and route not in measured:
            problems.append(f"{route} never called (declared {rule.count(n)})")
    return problems


def declared_total(kind: str, n: int) -> int:
    """The most calls the declaration allows for one LIST_Q on a panel of n servers."""
    return sum(rule.count(n) for rule in allowed(kind, n).values())


# Root and nested fields whose resolution reads a panel (not the gateway's own database).
UPSTREAM_FIELDS = frozenset({
    "servers", "server", "nodes", "node", "owner", "accounts", "account", "backups", "backup",
    "invoices", "invoice", "dnsZones", "dnsZone", "records", "resource",
})


def dependency_levels(document: str) -> int:
    """Sequential upstream rounds the query needs: the deepest chain of upstream-backed fields,
    each nested in the one before (a field's reads can start only once its parent is known)."""
    def depth(selection: SelectionSetNode | None, parent: str = "") -> int:
        if selection is None:
            return 0
        deepest = 0
        for node in selection.selections:
            if not isinstance(node, FieldNode):
                continue
            name = node.name.value
            below = depth(node.selection_set, name)
            # ``edges { node }`` is the connection's item, not the Server.node relation
            reads = name in UPSTREAM_FIELDS and not (parent == "edges" and name == "node")
            deepest = max(deepest, below + 1 if reads else below)
        return deepest

    operations = [d for d in parse(document).definitions
                  if isinstance(d, OperationDefinitionNode)]
    return max(depth(op.selection_set) for op in operations)
