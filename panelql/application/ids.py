"""Opaque global IDs: ``base64url("<Type>:<connection>:<upstream id>")`` without padding.

They carry everything needed to route a lookup (connection and upstream id), so ``server(id:)``
needs no lookup table, and they stay stable across gateway restarts.
"""

from __future__ import annotations

import base64
import binascii

from panelql.application.errors import BadUserInput
from panelql.domain.records import Ref, ResourceType

_TYPES = {t.value: t for t in ResourceType}


def encode(ref: Ref) -> str:
    return encode_parts(ref.type.value, ref.connection, ref.id)


def encode_parts(type_name: str, connection: str, upstream_id: str) -> str:
    """:func:`encode` of ``Ref(connection, ResourceType(type_name), upstream_id)``, for callers
    that make thousands of IDs and have the parts at hand."""
    raw = f"{type_name}:{connection}:{upstream_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(global_id: str, expected: ResourceType | None = None) -> Ref:
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        type_name, connection, upstream_id = text.split(":", 2)
        ref = Ref(connection, _TYPES[type_name], upstream_id)
    except (binascii.Error, UnicodeError, ValueError, KeyError):
        raise BadUserInput(f"{global_id!r} is not a valid PanelQL ID", field="id") from None
    if not connection or not upstream_id:
        raise BadUserInput(f"{global_id!r} is not a valid PanelQL ID", field="id")
    if expected is not None and ref.type is not expected:
        raise BadUserInput(
            f"ID {global_id!r} is a {ref.type.value}, not a {expected.value}", field="id"
        )
    return ref
