"""Which services of a customer a policy acts on.

The customer's services are what is linked to its customer reference (customer_links): each
linked Server on a compute connection and each linked Account on a hosting connection, on
every panel. A policy may narrow them to some provider kinds. A linked service the panel
cannot suspend (a panel user on a game panel, a kind without suspension) still gets a step,
SKIPPED with the reason, so a run shows everything it looked at.
"""

from __future__ import annotations

from dataclasses import dataclass

from panelql.application.gateway import Gateway
from panelql.domain.automation import PolicyRow, ServiceRef
from panelql.domain.records import ResourceType
from panelql.providers.contract import Capability, ComputeProvider, HostingProvider

SERVICE_TYPES = (ResourceType.SERVER.value, ResourceType.ACCOUNT.value)


@dataclass(frozen=True)
class Candidate:
    service: ServiceRef
    cannot: str | None  # why the panel cannot suspend it (None: it can)


def _cannot(gateway: Gateway, service: ServiceRef) -> str | None:
    provider = gateway.providers.get(service.connection)
    if service.resource_type == ResourceType.SERVER.value:
        if isinstance(provider, ComputeProvider) and provider.supports(Capability.SERVER_SUSPEND):
            return None
        return f"{service.kind} connections cannot suspend servers"
    if isinstance(provider, HostingProvider) and provider.supports(Capability.ACCOUNT_SUSPEND):
        return None
    return (f"{service.kind} connections cannot suspend accounts; link the customer's servers "
            f"on it to have them suspended")


async def of_customer(gateway: Gateway, customer_ref: str, policy: PolicyRow
                      ) -> list[Candidate]:
    out = []
    for link in await gateway.customer_links.of_customer(customer_ref):
        provider = gateway.providers.get(link.connection)
        if link.resource_type not in SERVICE_TYPES or provider is None:
            continue
        if not policy.admits(provider.kind):
            continue
        service = ServiceRef(link.connection, provider.kind, link.resource_type,
                             link.resource_id)
        out.append(Candidate(service, _cannot(gateway, service)))
    return out


def service_of(gateway: Gateway, connection: str, resource_type: str,
               resource_id: str) -> ServiceRef:
    provider = gateway.providers.get(connection)
    kind = provider.kind if provider is not None else "unknown"
    return ServiceRef(connection, kind, resource_type, resource_id)
