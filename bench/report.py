"""The one table every benchmark contributes rows to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    what: str
    measured: str
    target: str
    met: str


def table(rows: list[Row]) -> str:
    head = Row("measure", "measured", "target", "met")
    widths = [max(len(getattr(r, f)) for r in [head, *rows])
              for f in ("what", "measured", "target", "met")]

    def line(row: Row) -> str:
        cells = (row.what, row.measured, row.target, row.met)
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([line(head), rule, *(line(r) for r in rows)])
