"""Databases of hosting accounts (DirectAdmin ``CMD_API_DATABASES``)."""

from __future__ import annotations

import re

from panelql.application import validation
from panelql.application.context import Context
from panelql.application.errors import BadUserInput
from panelql.application.execution import ActionResult
from panelql.application.targets import target
from panelql.domain.records import DatabaseSpec, ResourceType
from panelql.providers.contract import Capability, HostingProvider

# MySQL names: the panel prefixes both with "<account>_", and MySQL caps user names at 32
# characters and database names at 64; letters, digits and underscores keep every panel happy.
_NAME = re.compile(r"^[A-Za-z0-9_]{1,16}$")


def _name(value: str, field: str) -> str:
    value = value.strip()
    if not _NAME.match(value):
        raise BadUserInput(f"{field} must be 1 to 16 letters, digits or underscores "
                           "(the panel adds the account's prefix)", field=field)
    return value


async def create(ctx: Context, account_id: str, name: str, user: str | None,
                 password: str) -> ActionResult:
    spec = DatabaseSpec(name=_name(name, "name"), user=_name(user or name, "user"),
                        password=validation.password(password))
    ref, provider = await target(ctx, account_id, ResourceType.ACCOUNT, HostingProvider,
                                 Capability.DATABASE_CREATE)
    made = await provider.create_database(ref.id, spec)
    return ActionResult(target=account_id, data={
        "database": {"name": made.name, "user": made.user, "host": made.host}})
