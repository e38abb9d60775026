"""Parameter verification as PVE does it, for the API calls the simulator serves.

PVE checks every request against the method's JSON schema before the handler runs
(pve-common ``src/PVE/JSONSchema.pm`` @f665029e, ``check_object``/``check_prop``): one message
per parameter, answered as ``400 Parameter verification failed.`` with
``{"data":null,"errors":{param: message}}``. What is reproduced here, with PVE's own wording:

- unknown parameters (``additionalProperties => 0``): "property is not defined in schema and
  the schema does not allow additional properties";
- a missing mandatory one: "property is missing and it is not optional";
- ``requires``: the *required* parameter gets "missing property required by '<name>'"
  (vzdump's ``notes-template`` and ``protected`` require ``storage``);
- types on the wire: booleans only ``0``/``1``, integers digits (``type check ('boolean')
  failed - got 'yes'``); enums ("value 'x' does not have a value in the enumeration 'a, b'");
  ``maxLength`` ("value may only be N characters long");
- formats ("invalid format - <why>"): ``pve-tag-list`` (``PVE_TAG_RE``
  ``[a-z0-9_][a-z0-9_\\-\\+\\.]*``, list split on ``,``, ``;`` and spaces as
  ``PVE::ParseUtils::split_list``), ``pve-configid-list``, ``pve-storage-id``,
  ``pve-vmid-list``, ``pve-storage-content-list``.

The schemas below are the subsets of each method's parameters that the simulator models; the
sources they were read from are named beside each.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_TAG = re.compile(r"[a-z0-9_][a-z0-9_\-+.]*", re.IGNORECASE)
_CONFIGID = re.compile(r"[a-z][a-z0-9_-]+", re.IGNORECASE)
_ID = re.compile(r"[a-z][a-z0-9\-_.]*[a-z0-9]", re.IGNORECASE)
_VMID = re.compile(r"[1-9][0-9]{2,8}")
_CONTENT = frozenset({"images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import"})


def split_list(value: str) -> list[str]:
    """``PVE::ParseUtils::split_list``: commas and semicolons count as spaces."""
    return re.sub(r"[,;]", " ", value).split()


def _each(check: Callable[[str], None]) -> Callable[[str], None]:
    def run(value: str) -> None:
        for item in split_list(value):
            check(item)
    return run


def _tag(value: str) -> None:
    if not _TAG.fullmatch(value):
        raise ValueError("invalid characters in tag")


def _configid(value: str) -> None:
    if not _CONFIGID.fullmatch(value):
        raise ValueError(f"invalid configuration ID '{value}'")


def _storage_id(value: str) -> None:
    if len(value) < 2:
        raise ValueError(f"storage ID '{value}' cannot be shorter than 2 characters")
    if not _ID.fullmatch(value):
        raise ValueError(f"storage ID '{value}' contains illegal characters")


def _vmid(value: str) -> None:
    if not _VMID.fullmatch(value):
        raise ValueError("value does not look like a valid VM ID")


def _content(value: str) -> None:
    if value not in _CONTENT:
        raise ValueError(f"invalid content type '{value}'")


@dataclass(frozen=True)
class Prop:
    type: str = "string"  # "string" | "integer" | "boolean"
    optional: bool = True
    enum: tuple[str, ...] | None = None
    max_length: int | None = None
    requires: str | None = None
    format: Callable[[str], None] | None = None


TAG_LIST = _each(_tag)
CONFIGID_LIST = _each(_configid)
BOOL = Prop("boolean")
INT = Prop("integer")


def verify(params: Mapping[str, str], schema: Mapping[str, Prop]) -> dict[str, str]:
    """PVE's messages for ``params`` (form or query values, all strings) against ``schema``."""
    errors: dict[str, str] = {}
    for key, prop in schema.items():
        if key not in params:
            if not prop.optional:
                errors[key] = "property is missing and it is not optional"
            continue
        message = _check(params[key], prop)
        if message:
            errors[key] = message
    for key in params:
        known = schema.get(key)
        if known is None:
            errors[key] = ("property is not defined in schema and the schema does not allow "
                           "additional properties")
        elif known.requires and known.requires not in params:
            errors[known.requires] = f"missing property required by '{key}'"
    return errors


def _check(value: str, prop: Prop) -> str | None:
    if prop.type == "boolean" and value not in ("0", "1"):
        return f"type check ('boolean') failed - got '{value}'"
    if prop.type == "integer" and not re.fullmatch(r"[+-]?\d+", value):
        return f"type check ('integer') failed - got '{value}'"
    if prop.format is not None:
        try:
            prop.format(value)
        except ValueError as exc:
            return f"invalid format - {exc}"
    if prop.max_length is not None and len(value) > prop.max_length:
        return f"value may only be {prop.max_length} characters long"
    if prop.enum is not None and value not in prop.enum:
        return (f"value '{value}' does not have a value in the enumeration "
                f"'{', '.join(prop.enum)}'")
    return None


# POST /nodes/{node}/vzdump: pve-manager PVE/API2/VZDump.pm @14a22df3 takes
# PVE::VZDump::Common::json_config_properties (pve-guest-common src/PVE/VZDump/Common.pm
# @4a8f6cbf) with additionalProperties 0; `notes-template` and `protected` require `storage`.
VZDUMP: dict[str, Prop] = {
    "vmid": Prop(format=_each(_vmid)), "all": BOOL, "stdexcludes": BOOL,
    "compress": Prop(enum=("0", "1", "gzip", "lzo", "zstd")),
    "mode": Prop(enum=("snapshot", "suspend", "stop")),
    "storage": Prop(format=_storage_id), "remove": BOOL, "stdout": BOOL,
    "notes-template": Prop(max_length=1024, requires="storage"),
    "protected": Prop("boolean", requires="storage"), "node": Prop(),
}

# GET /nodes/{node}/storage: pve-storage src/PVE/API2/Storage/Status.pm @0c56bad8.
STORAGE_INDEX: dict[str, Prop] = {
    "storage": Prop(format=_storage_id), "content": Prop(format=_each(_content)),
    "enabled": BOOL, "target": Prop(), "format": BOOL,
}

# PUT /nodes/{node}/{qemu,lxc}/{vmid}/config: the parameters the simulator models, from
# qemu-server src/PVE/QemuServer.pm @e6352be6 ($confdesc: `tags` pve-tag-list, `description`
# maxLength 8192, `lock` enum) and src/PVE/API2/Qemu.pm (`delete`, `digest` maxLength 40),
# pve-container src/PVE/LXC/Config.pm and src/PVE/API2/LXC/Config.pm @94f55852 (the same
# `tags`/`description`; its `lock` enum has no `suspended`).
_CONFIG_COMMON: dict[str, Prop] = {
    "memory": INT, "cores": INT, "tags": Prop(format=TAG_LIST),
    "description": Prop(max_length=8192), "delete": Prop(format=CONFIGID_LIST),
    "digest": Prop(max_length=40), "onboot": BOOL,
}
QEMU_CONFIG: dict[str, Prop] = {
    **_CONFIG_COMMON, "name": Prop(), "skiplock": BOOL,
    "lock": Prop(enum=("backup", "clone", "create", "migrate", "rollback", "snapshot",
                       "snapshot-delete", "suspending", "suspended")),
}
LXC_CONFIG: dict[str, Prop] = {
    **_CONFIG_COMMON, "hostname": Prop(),
    "lock": Prop(enum=("backup", "create", "destroyed", "disk", "fstrim", "migrate",
                       "mounted", "rollback", "snapshot", "snapshot-delete")),
}

# POST …/status/{action}: qemu-server src/PVE/API2/Qemu.pm and pve-container
# src/PVE/API2/LXC/Status.pm (the parameters besides node and vmid).
STATUS_ACTIONS: dict[str, dict[str, dict[str, Prop]]] = {
    "qemu": {
        "start": {"skiplock": BOOL, "timeout": INT},
        "stop": {"skiplock": BOOL, "timeout": INT, "keepActive": BOOL,
                 "overrule-shutdown": BOOL},
        "shutdown": {"skiplock": BOOL, "timeout": INT, "forceStop": BOOL, "keepActive": BOOL},
        "reboot": {"timeout": INT},
        "reset": {"skiplock": BOOL},
        "suspend": {"skiplock": BOOL, "todisk": BOOL, "statestorage": Prop(format=_storage_id)},
        "resume": {"skiplock": BOOL, "nocheck": BOOL},
    },
    "lxc": {
        "start": {"skiplock": BOOL, "debug": BOOL},
        "stop": {"skiplock": BOOL, "overrule-shutdown": BOOL},
        "shutdown": {"timeout": INT, "forceStop": BOOL},
        "reboot": {"timeout": INT},
    },
}
