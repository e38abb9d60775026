"""How PanelQL marks a guest suspended inside PVE: a tag plus a line in the guest's notes.

What a guest config can carry (sources read, see docs/providers/proxmox.md):

- ``lock`` is PVE's own: the container enum (pve-container ``src/PVE/LXC/Config.pm``
  @94f55852) has no ``suspended`` value, and a locked config refuses every later change
  (``check_lock`` in both config PUT handlers), so it cannot hold a billing state;
- ``tags`` (format ``pve-tag-list``, pve-common ``PVE_TAG_RE`` @f665029e) are shown in the
  resource tree and the guest's header, come back in ``/cluster/resources`` and
  ``status/current`` for both kinds, and can be changed while the guest runs (a "fast plug"
  option in qemu-server). PVE lower-cases, de-duplicates and sorts them on write
  (``PVE::GuestHelpers::get_unique_tags``);
- ``description`` (max 8192 characters, both kinds) is the "Notes" panel of the guest: free
  text, so it keeps the reason and the power state to restore.

So a suspended guest carries the tag :data:`TAG` (the status every reader sees, without an
extra call) and, at the end of its notes, one line written by :func:`add_note`. Tags and notes
the operator set are kept as they are.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

TAG = "panelql-suspended"
NOTES_LIMIT = 8192  # $confdesc->{description}{maxLength} in both qemu-server and pve-container
_NOTE = re.compile(r"^\[PanelQL\] suspended, was (running|stopped): (.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Note:
    previous: str  # "running" | "stopped": what unsuspend restores
    reason: str | None


def split_tags(value: Any) -> list[str]:
    """PVE's ``split_list``: commas, semicolons and spaces all separate tags."""
    return re.sub(r"[,;]", " ", str(value or "")).split()


def is_marked(entry: dict[str, Any]) -> bool:
    return TAG in (t.lower() for t in split_tags(entry.get("tags")))


def tags_with_mark(value: Any) -> str:
    return ";".join([*split_tags(value), TAG])


def tags_without_mark(value: Any) -> str:
    return ";".join(t for t in split_tags(value) if t.lower() != TAG)


def add_note(description: Any, previous: str, reason: str | None) -> str | None:
    """The notes with our line appended; without the reason if that would not fit, None if
    not even that fits (the tag alone still marks the guest)."""
    notes = str(description or "").rstrip()
    lead = notes + "\n\n" if notes else ""
    for why in (reason, None):
        full = f"{lead}[PanelQL] suspended, was {previous}: {json.dumps(why)}"
        if len(full) <= NOTES_LIMIT:
            return full
    return None


def read_note(description: Any) -> Note | None:
    matches = list(_NOTE.finditer(str(description or "")))
    if not matches:
        return None
    previous, raw = matches[-1].groups()
    try:
        reason = json.loads(raw)
    except ValueError:  # edited by hand in the PVE UI: keep what is there
        reason = raw
    return Note(previous, reason if isinstance(reason, str) else None)


def remove_note(description: Any) -> str:
    return _NOTE.sub("", str(description or "")).rstrip()
