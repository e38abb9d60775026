"""Opens the per-query read memo (providers/read_memo.py) around query operations only."""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from panelql.providers import read_memo


class ReadMemoInQueries(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        gateway = getattr(ctx.context, "gateway", None)
        # A mutation's reads must see its own writes. And with dataloaders switched off (the
        # bench's "what does batching save" baseline) reads are not shared either.
        if (ctx.operation_type is not OperationType.QUERY or gateway is None
                or not gateway.settings.dataloaders):
            yield
            return
        with read_memo.query_scope():
            yield


