"""What some panels offer beyond the lifecycle: a hosting account's databases
(DirectAdmin); kinds without them answer NOT_SUPPORTED. Kept apart from schema/mutation.py; the
root Mutation inherits them. (The VirtFusion console link is createLoginUrl's.)"""

from __future__ import annotations

import strawberry

from panelql.application import databases
from panelql.schema.actions import Key, run_action, values
from panelql.schema.payloads import AccountPayload
from panelql.schema.types.common import Info


@strawberry.type
class Database:
    name: str = strawberry.field(description="As the panel named it (DirectAdmin prefixes the "
                                             "account: acme_shop).")
    user: str
    host: str | None


@strawberry.type
class DatabasePayload(AccountPayload):
    @strawberry.field
    def database(self) -> Database | None:
        made = self.result.data.get("database")
        if not isinstance(made, dict):
            return None
        return Database(name=str(made["name"]), user=str(made["user"]), host=made.get("host"))


@strawberry.type
class ExtrasMutation:
    @strawberry.mutation(description="Create a MySQL database (and its user) for a hosting "
                                     "account. user defaults to name; the panel prefixes both "
                                     "with the account name.")
    async def create_database(self, info: Info, account: strawberry.ID, name: str,
                              password: str, user: str | None = None,
                              idempotency_key: Key = None) -> DatabasePayload:
        result = await run_action(
            info, account, idempotency_key,
            values(account=account, name=name, user=user, password=password),
            lambda: databases.create(info.context, account, name, user, password))
        return DatabasePayload(result=result)
