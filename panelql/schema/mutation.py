"""The root Mutation: lifecycle actions for billing integrations.

Every field takes ``idempotencyKey`` (or the ``Idempotency-Key`` header), runs through
``schema.actions.run_action`` (idempotency, audit; the action name is the field's GraphQL name)
and returns a typed payload. See ``panelql/schema/actions.py`` for how to declare a new one.
"""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from panelql.application import (
    account_actions,
    backup_actions,
    dns_actions,
    ids,
    invoice_actions,
    placement,
    server_actions,
    server_choices,
)
from panelql.application.errors import BadUserInput, StateConflict
from panelql.application.execution import ActionResult
from panelql.domain.records import (
    AccountSpec,
    DnsRecordInput,
    PowerAction,
    Resources,
    ResourceType,
    ServerSpec,
)
from panelql.schema.actions import Key, json_object, run_action, values
from panelql.schema.automation import AutomationMutation
from panelql.schema.billing import BillingMutation
from panelql.schema.customers import CustomerMutation
from panelql.schema.enums import ProviderKind
from panelql.schema.extras_mutation import ExtrasMutation
from panelql.schema.keys import KeyMutation
from panelql.schema.payloads import (
    AccountPayload,
    BackupPayload,
    DeletePayload,
    DnsZonePayload,
    InvoicePayload,
    ServerPayload,
)
from panelql.schema.site_mutation import SiteMutation
from panelql.schema.types.common import Info

SkipCheck = Annotated[bool, strawberry.argument(
    description="Create the zone even if the domain is not delegated to the platform's "
                "nameservers (checked first where the provider can, e.g. ISPConfig: CONFLICT "
                "with reason NAMESERVERS_MISMATCH). Admin keys only.")]


@strawberry.input
class ResourcesInput:
    memory_mb: int | None = None
    cpu_cores: float | None = None
    disk_mb: int | None = None

    def to_record(self) -> Resources:
        return Resources(memory_mb=self.memory_mb, cpu_cores=self.cpu_cores, disk_mb=self.disk_mb)


@strawberry.input(description="Where to put a new server when no node is given.")
class PlacementInput:
    region: str | None = None


@strawberry.input
class CreateServerInput:
    provider: str = strawberry.field(description="Connection name.")
    name: str
    resources: ResourcesInput
    node: strawberry.ID | None = strawberry.field(
        default=None, description="Omit to let placement pick the least loaded node.")
    placement: PlacementInput | None = None
    owner: strawberry.ID | None = None
    template: str | None = strawberry.field(
        default=None, description="Egg, template, OS image or plan, as the panel names it.")
    ports: list[int] | None = None
    external_ref: str | None = None
    options: JSON | None = strawberry.field(default=None,
                                            description="Panel-specific extras.")


@strawberry.input
class CreateAccountInput:
    provider: str | None = strawberry.field(
        default=None, description="Connection name. Omit, with kind, to let placement pick the "
        "least-loaded healthy server of that kind (NextPanel), failing over when one is full "
        "or down; or give node.")
    kind: ProviderKind | None = strawberry.field(
        default=None, description="Place among every connection of this kind.")
    username: str
    email: str | None = None
    name: str | None = strawberry.field(default=None, description="The person's first and "
                                        "last name (Pterodactyl needs both).")
    password: str | None = None
    package: str | None = None
    domain: str | None = None
    node: strawberry.ID | None = None
    external_ref: str | None = None


@strawberry.input
class DnsRecordWriteInput:
    id: str | None = strawberry.field(default=None,
                                      description="Update this record; omit to create.")
    type: str
    name: str
    content: str | None = strawberry.field(
        default=None, description="The value; for TXT, the text as a reader sees it (cut into "
        "strings of 255 bytes where longer). Required unless txtStrings is given.")
    ttl: int | None = None
    priority: int | None = None
    txt_strings: list[str] | None = strawberry.field(
        default=None, description="TXT only: the record's character-strings exactly (each at "
        "most 255 bytes), e.g. a DKIM key split in two. content may then be left out.")


async def _place(info: Info, data: CreateServerInput) -> str:
    res = data.resources
    request = placement.PlacementRequest(
        memory_mb=res.memory_mb, cpu_cores=res.cpu_cores, disk_mb=res.disk_mb,
        region=data.placement.region if data.placement else None, providers=[data.provider])
    found = await placement.candidates(info.context, request)
    failed = [e for e in info.context.partial_errors if e.provider == data.provider]
    if not found and failed:
        raise failed[0]  # the panel could not list its nodes: say so, not "no room"
    if not found:
        where = f" in region {request.region}" if request.region else ""
        raise StateConflict(f"no online node{where} on {data.provider} has room for this server",
                            currentStatus="NO_CAPACITY")
    return found[0].node.id


def _power(action: PowerAction) -> Any:
    async def resolve(self: Any, info: Info, id: strawberry.ID,
                      idempotency_key: Key = None) -> ServerPayload:
        result = await run_action(info, id, idempotency_key, values(id=id),
                                  lambda: server_actions.power(info.context, id, action))
        return ServerPayload(result=result)
    return strawberry.mutation(resolve, description=f"{action.value.capitalize()} a server.")


@strawberry.type
class Mutation(CustomerMutation, KeyMutation, AutomationMutation, BillingMutation,
               SiteMutation, ExtrasMutation):
    start_server = _power(PowerAction.START)
    stop_server = _power(PowerAction.STOP)
    restart_server = _power(PowerAction.RESTART)
    kill_server = _power(PowerAction.KILL)

    @strawberry.mutation(description="Provision a server on a node, or on the least loaded "
                                     "node with room when none is given.")
    async def create_server(self, info: Info, input: CreateServerInput,
                            idempotency_key: Key = None) -> ServerPayload:
        async def run() -> ActionResult:
            server_actions.precheck(info.context, input.provider, input.resources.to_record())
            node = ids.decode(input.node, ResourceType.NODE).id if input.node else \
                await _place(info, input)
            if input.node and ids.decode(input.node).connection != input.provider:
                raise BadUserInput("the node must belong to the provider", field="node")
            spec = ServerSpec(
                name=input.name, node_id=node, resources=input.resources.to_record(),
                owner_id=ids.decode(input.owner, ResourceType.ACCOUNT).id if input.owner else None,
                template=input.template, ports=input.ports or [],
                external_ref=input.external_ref,
                options=json_object(input.options, "options"))
            return await server_actions.create(info.context, spec, input.provider)
        result = await run_action(info, None, idempotency_key, values(input=input), run)
        return ServerPayload(result=result)

    @strawberry.mutation(description="Suspend, e.g. for non-payment; optionally stop it first.")
    async def suspend_server(self, info: Info, id: strawberry.ID, reason: str | None = None,
                             stop_server: bool = True, idempotency_key: Key = None
                             ) -> ServerPayload:
        result = await run_action(info, id, idempotency_key,
                                  values(id=id, reason=reason, stop_server=stop_server),
                                  lambda: server_actions.suspend(info.context, id, reason,
                                                                 stop_server))
        return ServerPayload(result=result)

    @strawberry.mutation
    async def unsuspend_server(self, info: Info, id: strawberry.ID,
                               idempotency_key: Key = None) -> ServerPayload:
        result = await run_action(info, id, idempotency_key, values(id=id),
                                  lambda: server_actions.unsuspend(info.context, id))
        return ServerPayload(result=result)

    @strawberry.mutation(description="Reinstall. image: another image from the catalogue "
                                     "(VirtFusion OS template, Pterodactyl egg as "
                                     "'<nest>/<egg>'); omit it to reinstall the same one. "
                                     "NOT_SUPPORTED, with the reason, where the panel cannot "
                                     "change the image.")
    async def reinstall_server(self, info: Info, id: strawberry.ID, image: str | None = None,
                               idempotency_key: Key = None) -> ServerPayload:
        if image is not None:
            result = await run_action(info, id, idempotency_key, values(id=id, image=image),
                                      lambda: server_choices.reinstall(info.context, id, image))
            return ServerPayload(result=result)
        result = await run_action(info, id, idempotency_key, values(id=id),
                                  lambda: server_actions.reinstall(info.context, id))
        return ServerPayload(result=result)

    @strawberry.mutation(description="Change package: stops a running server, resizes it and "
                                     "starts it again (restart: false to skip the bounce). "
                                     "Give resources, or package: a plan or package from the "
                                     "catalogue by id or name (VirtFusion package, ProxmoxWP "
                                     "plan).")
    async def update_server_resources(self, info: Info, id: strawberry.ID,
                                      resources: ResourcesInput | None = None,
                                      restart: bool = True, package: str | None = None,
                                      idempotency_key: Key = None) -> ServerPayload:
        if (resources is None) == (package is None):
            raise BadUserInput("give either resources or package", field="package")
        if package is not None:
            result = await run_action(
                info, id, idempotency_key, values(id=id, package=package, restart=restart),
                lambda: server_choices.resize(info.context, id, package, restart))
            return ServerPayload(result=result)
        assert resources is not None
        result = await run_action(info, id, idempotency_key,
                                  values(id=id, resources=resources, restart=restart),
                                  lambda: server_actions.resize(info.context, id,
                                                                resources.to_record(), restart))
        return ServerPayload(result=result)

    @strawberry.mutation(description="Terminate. finalBackup: back up, wait, stop, delete.")
    async def delete_server(self, info: Info, id: strawberry.ID, final_backup: bool = False,
                            idempotency_key: Key = None) -> DeletePayload:
        result = await run_action(info, id, idempotency_key,
                                  values(id=id, final_backup=final_backup),
                                  lambda: server_actions.delete(info.context, id, final_backup))
        return DeletePayload(result=result)

    @strawberry.mutation
    async def create_backup(self, info: Info, server: strawberry.ID, name: str | None = None,
                            idempotency_key: Key = None) -> BackupPayload:
        result = await run_action(info, server, idempotency_key,
                                  values(server=server, name=name),
                                  lambda: backup_actions.create(info.context, server, name))
        return BackupPayload(result=result)

    @strawberry.mutation
    async def restore_backup(self, info: Info, id: strawberry.ID,
                             idempotency_key: Key = None) -> BackupPayload:
        result = await run_action(info, id, idempotency_key, values(id=id),
                                  lambda: backup_actions.restore(info.context, id))
        return BackupPayload(result=result)

    @strawberry.mutation
    async def delete_backup(self, info: Info, id: strawberry.ID,
                            idempotency_key: Key = None) -> DeletePayload:
        result = await run_action(info, id, idempotency_key, values(id=id),
                                  lambda: backup_actions.delete(info.context, id))
        return DeletePayload(result=result)

    @strawberry.mutation(description="Give a panel user access to a server with the seeds' "
                                     "permission names (server.start, console.read, …).")
    async def grant_server_access(self, info: Info, server: strawberry.ID,
                                  account: strawberry.ID, permissions: list[str],
                                  idempotency_key: Key = None) -> ServerPayload:
        result = await run_action(info, server, idempotency_key,
                                  values(server=server, account=account,
                                         permissions=permissions),
                                  lambda: account_actions.grant_access(info.context, server,
                                                                       account, permissions))
        return ServerPayload(result=result)

    @strawberry.mutation
    async def revoke_server_access(self, info: Info, server: strawberry.ID,
                                   account: strawberry.ID, idempotency_key: Key = None
                                   ) -> ServerPayload:
        result = await run_action(info, server, idempotency_key,
                                  values(server=server, account=account),
                                  lambda: account_actions.revoke_access(info.context, server,
                                                                        account))
        return ServerPayload(result=result)

    @strawberry.mutation
    async def create_account(self, info: Info, input: CreateAccountInput,
                             idempotency_key: Key = None) -> AccountPayload:
        node = ids.decode(input.node, ResourceType.NODE) if input.node else None
        if node is not None and input.provider not in (None, node.connection):
            raise BadUserInput("node belongs to another provider connection", field="node")
        spec = AccountSpec(username=input.username, email=input.email, password=input.password,
                           name=input.name,
                           package=input.package, domain=input.domain,
                           node_id=node.id if node else None, external_ref=input.external_ref)
        connection = node.connection if node else input.provider
        kind = input.kind.value if input.kind else None
        result = await run_action(info, None, idempotency_key, values(input=input),
                                  lambda: account_actions.create(info.context, connection, spec,
                                                                 kind))
        return AccountPayload(result=result)

    @strawberry.mutation
    async def suspend_account(self, info: Info, id: strawberry.ID, reason: str | None = None,
                              idempotency_key: Key = None) -> AccountPayload:
        result = await run_action(info, id, idempotency_key,
                                  values(id=id, reason=reason),
                                  lambda: account_actions.suspend(info.context, id, reason))
        return AccountPayload(result=result)

    @strawberry.mutation
    async def unsuspend_account(self, info: Info, id: strawberry.ID,
                                idempotency_key: Key = None) -> AccountPayload:
        result = await run_action(info, id, idempotency_key, values(id=id),
                                  lambda: account_actions.unsuspend(info.context, id))
        return AccountPayload(result=result)

    @strawberry.mutation
    async def change_account_package(self, info: Info, id: strawberry.ID, package: str,
                                     idempotency_key: Key = None) -> AccountPayload:
        result = await run_action(info, id, idempotency_key,
                                  values(id=id, package=package),
                                  lambda: account_actions.change_package(info.context, id,
                                                                         package))
        return AccountPayload(result=result)

    @strawberry.mutation
    async def change_account_password(self, info: Info, id: strawberry.ID, password: str,
                                      idempotency_key: Key = None) -> AccountPayload:
        result = await run_action(info, id, idempotency_key,
                                  values(id=id, password=password),
                                  lambda: account_actions.change_password(info.context, id,
                                                                          password))
        return AccountPayload(result=result)

    @strawberry.mutation
    async def delete_account(self, info: Info, id: strawberry.ID,
                             idempotency_key: Key = None) -> DeletePayload:
        result = await run_action(info, id, idempotency_key, values(id=id),
                                  lambda: account_actions.delete(info.context, id))
        return DeletePayload(result=result)

    @strawberry.mutation
    async def create_dns_zone(self, info: Info, provider: str, name: str,
                              account: strawberry.ID | None = None,
                              skip_nameserver_check: SkipCheck = False,
                              idempotency_key: Key = None) -> DnsZonePayload:
        result = await run_action(info, None, idempotency_key,
                                  values(provider=provider, name=name, account=account,
                                         skip_nameserver_check=skip_nameserver_check),
                                  lambda: dns_actions.create_zone(
                                      info.context, provider, name, account, skip_nameserver_check))
        return DnsZonePayload(result=result)

    @strawberry.mutation
    async def delete_dns_zone(self, info: Info, id: strawberry.ID,
                              idempotency_key: Key = None) -> DeletePayload:
        result = await run_action(info, id, idempotency_key, values(id=id),
                                  lambda: dns_actions.delete_zone(info.context, id))
        return DeletePayload(result=result)

    @strawberry.mutation
    async def upsert_dns_record(self, info: Info, zone: strawberry.ID,
                                record: DnsRecordWriteInput, idempotency_key: Key = None
                                ) -> DnsZonePayload:
        value = DnsRecordInput(type=record.type, name=record.name, content=record.content or "",
                               ttl=record.ttl, priority=record.priority, id=record.id,
                               txt_strings=record.txt_strings)
        result = await run_action(info, zone, idempotency_key,
                                  values(zone=zone, record=record),
                                  lambda: dns_actions.upsert_record(info.context, zone,
                                                                            value))
        return DnsZonePayload(result=result)

    @strawberry.mutation
    async def delete_dns_record(self, info: Info, zone: strawberry.ID, record_id: str,
                                idempotency_key: Key = None) -> DnsZonePayload:
        result = await run_action(info, zone, idempotency_key,
                                  values(zone=zone, record_id=record_id),
                                  lambda: dns_actions.delete_record(info.context, zone,
                                                                            record_id))
        return DnsZonePayload(result=result)

    @strawberry.mutation
    async def finalize_invoice(self, info: Info, id: strawberry.ID,
                               idempotency_key: Key = None) -> InvoicePayload:
        return await _invoice(info, id, "finalize", idempotency_key)

    @strawberry.mutation
    async def pay_invoice(self, info: Info, id: strawberry.ID,
                          idempotency_key: Key = None) -> InvoicePayload:
        return await _invoice(info, id, "pay", idempotency_key)

    @strawberry.mutation
    async def void_invoice(self, info: Info, id: strawberry.ID,
                           idempotency_key: Key = None) -> InvoicePayload:
        return await _invoice(info, id, "void", idempotency_key)

    @strawberry.mutation
    async def send_invoice(self, info: Info, id: strawberry.ID,
                           idempotency_key: Key = None) -> InvoicePayload:
        return await _invoice(info, id, "send", idempotency_key)


async def _invoice(info: Info, id: strawberry.ID, action: str, key: str | None
                   ) -> InvoicePayload:
    result = await run_action(info, id, key, values(id=id),
                              lambda: invoice_actions.invoice_action(info.context, id,
                                                                         action))
    return InvoicePayload(result=result)
