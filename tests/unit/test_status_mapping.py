"""Status mapping (domain/status.py and the adapters' mapping modules): raw upstream states to
the shared enums, with the precedence rules the adapters document. Inputs are the upstreams'
own state words (Proxmox: qemu-server ``status``/``qmpstatus``/``lock``, HA ``hastate``;
VirtFusion: the server record's lifecycle fields; Catalyst: a backup's ``checksum``), written
here from those sources, not read back from the tables. Fast, so `make mutation` uses them."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from panelql.domain import status
from panelql.domain.status import BackupStatus, NodeStatus, ServerStatus
from panelql.providers.catalyst import mapping as catalyst
from panelql.providers.proxmox import mapping as proxmox
from panelql.providers.virtfusion import mapping as virtfusion


def test_map_status_looks_up_and_reports_unmapped_values_once(
        caplog: pytest.LogCaptureFixture) -> None:
    table = {"on": ServerStatus.RUNNING}
    t1, t2, t3 = (f"src-{uuid.uuid4().hex}" for _ in range(3))  # "once" is per process
    caplog.set_level(logging.WARNING, logger="panelql.domain.status")
    unknown = ServerStatus.UNKNOWN
    assert status.map_status(table, "on", unknown, source=t1) is ServerStatus.RUNNING
    assert status.map_status(table, None, unknown, source=t1) is unknown
    assert not caplog.records
    for _ in range(3):
        assert status.map_status(table, "weird", unknown, source=t1) is unknown
    assert [r.getMessage() for r in caplog.records] == ["unmapped upstream status"]
    record: Any = caplog.records[0]
    assert (record.source, record.raw_status) == (t1, "weird")
    status.map_status(table, "weird", unknown, source=t2)  # another source
    assert len(caplog.records) == 2
    assert status.map_status(table, "odd", ServerStatus.ERROR, source=t3) is ServerStatus.ERROR


def test_transitional_statuses() -> None:
    assert {
        ServerStatus.STARTING, ServerStatus.STOPPING, ServerStatus.REBOOTING,
        ServerStatus.INSTALLING, ServerStatus.RESTORING, ServerStatus.MIGRATING,
        ServerStatus.DELETING} == status.TRANSITIONAL_SERVER_STATUSES


# -- Proxmox: HA error > lifecycle lock > power state (QEMU run state when running) ---------
@pytest.mark.parametrize(("entry", "key", "expected"), [
    ({"status": "running"}, "running", ServerStatus.RUNNING),
    ({"status": "stopped"}, "stopped", ServerStatus.STOPPED),
    ({}, "unknown", ServerStatus.UNKNOWN),
    ({"status": "running", "qmpstatus": "paused"}, "paused", ServerStatus.PAUSED),
    ({"status": "running", "qmpstatus": "inmigrate"}, "inmigrate", ServerStatus.MIGRATING),
    ({"status": "stopped", "qmpstatus": "paused"}, "stopped", ServerStatus.STOPPED),
    ({"status": "running", "qmpstatus": ""}, "running", ServerStatus.RUNNING),
    ({"status": "running", "lock": "backup"}, "running", ServerStatus.RUNNING),  # not lifecycle
    ({"status": "running", "lock": "migrate"}, "lock:migrate", ServerStatus.MIGRATING),
    ({"status": "stopped", "lock": "create"}, "lock:create", ServerStatus.INSTALLING),
    ({"status": "stopped", "lock": "suspended"}, "lock:suspended", ServerStatus.SUSPENDED),
    ({"status": "running", "lock": "suspending"}, "lock:suspending", ServerStatus.SUSPENDED),
    ({"status": "stopped", "lock": "rollback"}, "lock:rollback", ServerStatus.RESTORING),
    ({"status": "running", "lock": "migrate", "hastate": "error"}, "hastate:error",
     ServerStatus.ERROR),
    ({"status": "running", "hastate": "started"}, "running", ServerStatus.RUNNING),
    ({"status": "prelaunch"}, "prelaunch", ServerStatus.STARTING),
    ({"status": "running", "qmpstatus": "guest-panicked"}, "guest-panicked", ServerStatus.ERROR),
    ({"status": "martian"}, "martian", ServerStatus.UNKNOWN),
])
def test_proxmox_precedence(entry: dict[str, Any], key: str, expected: ServerStatus) -> None:
    assert proxmox.status_key(entry) == key
    assert proxmox.server_status(entry) is expected


@pytest.mark.parametrize(("entry", "raw"), [
    ({"status": "running"}, "running"),
    ({}, "unknown"),
    ({"status": "running", "qmpstatus": "running"}, "running"),
    ({"status": "running", "qmpstatus": "paused"}, "running qmpstatus=paused"),
    ({"status": "stopped", "lock": "backup"}, "stopped lock=backup"),
    ({"status": "running", "qmpstatus": "paused", "lock": "migrate", "hastate": "error"},
     "running qmpstatus=paused lock=migrate hastate=error"),
    ({"status": "running", "hastate": "started"}, "running"),
])
def test_proxmox_raw_status_keeps_every_field(entry: dict[str, Any], raw: str) -> None:
    assert proxmox.raw_status(entry) == raw


def test_proxmox_lock_sets() -> None:
    assert {"create", "clone", "rollback", "migrate", "suspending",
                                       "suspended", "destroyed"} == proxmox.LIFECYCLE_LOCKS
    assert {"suspended", "suspending"} == proxmox.SUSPENSION_LOCKS


# -- VirtFusion: delete > build failed > not built > rebuild > migrate > suspended > power ----
BUILT = {"state": "complete", "built": "2024-01-01 00:00:00"}


@pytest.mark.parametrize(("raw", "key"), [
    ({**BUILT}, None),
    ({**BUILT, "deleteLevel": 1, "buildFailed": True, "suspended": True}, "deleteLevel"),
    ({**BUILT, "deleteLevel": 0, "buildFailed": True}, "buildFailed"),
    ({**BUILT, "deleteLevel": True}, None),  # a bool is not a level
    ({**BUILT, "deleteLevel": "2"}, None),  # nor a string
    ({**BUILT, "buildFailed": "true"}, None),  # only the JSON true counts
    ({"state": "queued", "built": "x"}, "notBuilt"),
    ({"state": "complete", "built": None}, "notBuilt"),
    ({"state": "complete"}, "notBuilt"),
    ({**BUILT, "rebuild": True, "migrateLevel": 2}, "rebuild"),
    ({**BUILT, "migrateLevel": 2, "suspended": True}, "migrateLevel"),
    ({**BUILT, "migrateLevel": -1}, None),
    ({**BUILT, "migrateLevel": 1}, "migrateLevel"),
    ({**BUILT, "deleteLevel": 1}, "deleteLevel"),
    ({**BUILT, "suspended": True}, "suspended"),
    ({**BUILT, "suspended": 1}, None),
])
def test_virtfusion_lifecycle_precedence(raw: dict[str, Any], key: str | None) -> None:
    assert virtfusion.lifecycle_key(raw) == key


@pytest.mark.parametrize(("raw", "key", "node_status"), [
    ({"maintenance": True, "enabled": False}, "maintenance", NodeStatus.MAINTENANCE),
    ({"maintenance": False, "enabled": False}, "disabled", NodeStatus.OFFLINE),
    ({"enabled": True}, "enabled", NodeStatus.ONLINE),
    ({}, "enabled", NodeStatus.ONLINE),
    ({"maintenance": 1, "enabled": 0}, "enabled", NodeStatus.ONLINE),
])
def test_virtfusion_nodes(raw: dict[str, Any], key: str, node_status: NodeStatus) -> None:
    assert virtfusion.node_key(raw) == key
    assert virtfusion.NODE_STATUS[key] is node_status


def test_virtfusion_lifecycle_keys_are_in_the_table() -> None:
    for key in ("deleteLevel", "buildFailed", "notBuilt", "rebuild", "migrateLevel",
                "suspended"):
        assert key in virtfusion.SERVER_STATUS
    assert virtfusion.SERVER_STATUS["deleteLevel"] is ServerStatus.DELETING
    assert virtfusion.SERVER_STATUS["shutoff"] is ServerStatus.STOPPED


# -- Catalyst: a backup is done once it has a checksum ----------------------------------------
@pytest.mark.parametrize(("raw", "expected"), [
    ({"checksum": "sha256:ab"}, (BackupStatus.COMPLETED, "completed")),
    ({"checksum": None, "sizeMb": 5}, (BackupStatus.IN_PROGRESS, "in_progress")),
    ({"checksum": ""}, (BackupStatus.IN_PROGRESS, "in_progress")),
    ({}, (BackupStatus.IN_PROGRESS, "in_progress")),
])
def test_catalyst_backup_status(raw: dict[str, Any],
                                expected: tuple[BackupStatus, str]) -> None:
    assert catalyst.backup_status(raw) == expected


def test_catalyst_states_from_its_state_machine() -> None:
    # catalyst-backend ServerStateMachine states
    assert {k: v.value for k, v in catalyst.SERVER_STATUS.items()} == {
        "stopped": "STOPPED", "installing": "INSTALLING", "starting": "STARTING",
        "running": "RUNNING", "stopping": "STOPPING", "crashed": "ERROR",
        "suspended": "SUSPENDED", "error": "ERROR"}
