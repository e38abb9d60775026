"""GetOperation as the GraphQL spec defines it: several operations and no operationName is a
request error. Strawberry (0.341) runs the first operation instead, so a client that forgot
operationName gets an answer to a question it may not have meant to ask."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

MESSAGE = "Must provide operation name if query contains multiple operations."


class RequireOperationName(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        # Strawberry keeps the client's operationName privately; its public operation_name
        # falls back to the first operation's name, which is exactly what we must not do.
        provided = getattr(context, "_provided_operation_name", None)
        if document is not None and provided is None:
            operations = [d for d in document.definitions
                          if isinstance(d, OperationDefinitionNode)]
            if len(operations) > 1:
                # Set before validation runs: strawberry then skips validation and answers
                # with this error, before execution, as a request error.
                context.pre_execution_errors = [
                    GraphQLError(MESSAGE, extensions={"code": "BAD_USER_INPUT"})]
        yield
