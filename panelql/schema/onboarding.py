"""New customers on: the whole order in one call, login links and root password resets.

The one-time secrets (a login URL, a generated or reset password) come from
``ActionResult.secrets``, which only the call that made them holds: a replay with the same
idempotency key answers ``null`` for them and says why.
"""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from panelql.application import login_actions, provisioning
from panelql.application.execution import ActionResult
from panelql.domain.records import ResourceType
from panelql.schema.actions import json_object, run_action, values
from panelql.schema.mutation import PlacementInput, ResourcesInput
from panelql.schema.payloads import Payload, _load
from panelql.schema.types.common import Info
from panelql.schema.types.compute import Account, Server

Key = Annotated[str | None, strawberry.argument(
    description="Retries with the same key and input return the first result (one-time "
                "secrets excepted: they are handed out once).")]


@strawberry.input(description="The customer's panel user, found by the customer's link or "
                              "created and linked.")
class OrderAccountInput:
    username: str
    email: str
    name: str | None = strawberry.field(default=None, description="First and last name "
                                        "(Pterodactyl needs both, VirtFusion shows it).")
    password: str | None = strawberry.field(
        default=None, description="Omit: Pterodactyl mails a set-password link; Catalyst gets "
        "a generated one, returned once as initialPassword; VirtFusion users log in by link.")
    external_ref: str | None = strawberry.field(
        default=None, description="The id the panel keeps for the user (Pterodactyl "
        "external_id, VirtFusion's numeric extRelationId). Default: the customerRef.")


@strawberry.input
class OrderServerInput:
    name: str
    resources: ResourcesInput
    node: strawberry.ID | None = strawberry.field(
        default=None, description="Omit to let placement pick the least loaded node.")
    placement: PlacementInput | None = None
    template: str | None = None
    ports: list[int] | None = None
    external_ref: str | None = strawberry.field(
        default=None, description="The billing system's service id (whmcs:service:42); kept "
        "on the server where the panel can, and how a retried order finds it again.")
    options: JSON | None = None


@strawberry.input
class ProvisionServiceInput:
    customer_ref: str = strawberry.field(description="The billing customer (whmcs:42).")
    provider: str = strawberry.field(description="Connection name of the panel.")
    account: OrderAccountInput
    server: OrderServerInput


@strawberry.type(description="How the customer gets in.")
class LoginDetails:
    result: strawberry.Private[ActionResult]

    def _login(self) -> dict[str, Any]:
        return dict(self.result.data.get("login") or {})

    @strawberry.field(description="False where the panel has no one-time login link.")
    def supported(self) -> bool:
        return bool(self._login().get("supported"))

    @strawberry.field(description="A one-time login URL; only in the answer that made it.")
    def url(self) -> str | None:
        value = self.result.secrets.get("loginUrl")
        return str(value) if value else None

    @strawberry.field
    def expires_at(self) -> str | None:
        value = self._login().get("expiresAt")
        return str(value) if value else None

    @strawberry.field(description="Why there is no url: the panel has no login links (and "
                                  "what to do instead), the link failed, or this is a replay.")
    def reason(self) -> str | None:
        if self.url() is None and self.result.replayed and self.supported():
            return login_actions.ONCE
        value = self._login().get("reason")
        return str(value) if value else None


@strawberry.type
class ProvisionServicePayload(Payload):
    @strawberry.field
    async def server(self, info: Info) -> Server | None:
        record = await _load(info, self.result.target, ResourceType.SERVER)
        return Server(r=record) if record else None  # type: ignore[arg-type]

    @strawberry.field(description="The customer's panel user (the server's owner).")
    async def account(self, info: Info) -> Account | None:
        record = await _load(info, self.result.data.get("account"), ResourceType.ACCOUNT)
        return Account(r=record) if record else None  # type: ignore[arg-type]

    @strawberry.field(description="False when the customer's user already existed.")
    def account_created(self) -> bool:
        return bool(self.result.data.get("accountCreated"))

    @strawberry.field(description="False when an earlier attempt had created the server.")
    def server_created(self) -> bool:
        return bool(self.result.data.get("serverCreated"))

    @strawberry.field(description="A password the gateway generated for the new user (panels "
                                  "that need one, e.g. Catalyst); only in the first answer.")
    def initial_password(self) -> str | None:
        value = self.result.secrets.get("initialPassword")
        return str(value) if value else None

    @strawberry.field
    def login(self) -> LoginDetails:
        return LoginDetails(result=self.result)


@strawberry.type
class LoginUrlPayload(Payload):
    @strawberry.field(description="The one-time URL; null on a replay (see warnings).")
    def url(self) -> str | None:
        value = self.result.secrets.get("url")
        return str(value) if value else None

    @strawberry.field
    def expires_at(self) -> str | None:
        value = self.result.data.get("expiresAt")
        return str(value) if value else None

    @strawberry.field(description="The panel user the link logs in.")
    def username(self) -> str | None:
        value = self.result.data.get("username")
        return str(value) if value else None

    @strawberry.field
    def warnings(self) -> list[str]:
        return [login_actions.ONCE] if self.result.replayed else []


@strawberry.type
class ServerPasswordPayload(Payload):
    @strawberry.field
    async def server(self, info: Info) -> Server | None:
        record = await _load(info, self.result.target, ResourceType.SERVER)
        return Server(r=record) if record else None  # type: ignore[arg-type]

    @strawberry.field
    def user(self) -> str:
        return str(self.result.data.get("user") or "")

    @strawberry.field(description="The new password; null on a replay (see warnings).")
    def password(self) -> str | None:
        value = self.result.secrets.get("password")
        return str(value) if value else None

    @strawberry.field
    def warnings(self) -> list[str]:
        return [login_actions.ONCE] if self.result.replayed else []


def _order(data: ProvisionServiceInput) -> provisioning.Order:
    s, a = data.server, data.account
    return provisioning.Order(
        customer_ref=data.customer_ref, connection=data.provider,
        user=provisioning.NewUser(username=a.username, email=a.email, name=a.name,
                                  password=a.password, external_ref=a.external_ref),
        server=provisioning.NewServer(
            name=s.name, resources=s.resources.to_record(), node=s.node,
            region=s.placement.region if s.placement else None, template=s.template,
            ports=s.ports or [], external_ref=s.external_ref,
            options=json_object(s.options, "server.options")))


@strawberry.type
class OnboardingMutation:
    @strawberry.mutation(description="The seed's order flow in one call: find or create (and "
                                     "link) the customer's panel user, create the server it "
                                     "owns, return the Operation and the login details. A "
                                     "retry with the same key after a failure finishes the "
                                     "job without a second user or server.")
    async def provision_service(self, info: Info, input: ProvisionServiceInput,
                                idempotency_key: Key = None) -> ProvisionServicePayload:
        result = await run_action(info, None, idempotency_key, values(input=input),
                                  lambda: provisioning.provision(info.context, _order(input)),
                                  convergent=True)
        return ProvisionServicePayload(result=result)

    @strawberry.mutation(description="A one-time login URL for a Server (VirtFusion) or an "
                                     "Account (DirectAdmin); NOT_SUPPORTED with the reason "
                                     "where the panel has none. Never logged or stored.")
    async def create_login_url(self, info: Info, resource: strawberry.ID,
                               idempotency_key: Key = None) -> LoginUrlPayload:
        result = await run_action(info, resource, idempotency_key, values(resource=resource),
                                  lambda: login_actions.login_url(info.context, resource))
        return LoginUrlPayload(result=result)

    @strawberry.mutation(description="Set a new password for a system user inside the server "
                                     "(root by default; VirtFusion). Returned once.")
    async def reset_server_password(self, info: Info, id: strawberry.ID, user: str = "root",
                                    idempotency_key: Key = None) -> ServerPasswordPayload:
        result = await run_action(info, id, idempotency_key, values(id=id, user=user),
                                  lambda: login_actions.reset_password(info.context, id, user))
        return ServerPasswordPayload(result=result)
