"""Who is asking and what they may do: API keys → Viewer, scopes per root field.

Scopes follow the seeds' permission names. ``admin`` implies every scope. One table says which
scope each root field needs, so a new field without an entry is refused by a test, not
silently open.
"""

from __future__ import annotations

from panelql.application.context import Viewer
from panelql.application.errors import Forbidden, Unauthenticated
from panelql.db.api_keys import ApiKeys
from panelql.domain.records import ResourceType

SCOPES = frozenset({
    "server.view", "server.create", "server.start", "server.stop", "server.restart",
    "server.suspend", "server.reinstall", "server.update", "server.delete", "server.access",
    "console.read", "backup.create", "backup.restore", "backup.delete", "account.write",
    "dns.write", "billing.read", "billing.write", "audit.read", "customer.write", "admin",
    "login.create", "server.password",
})

ANY = ""  # any authenticated key

REQUIRED: dict[str, dict[str, str]] = {
    "Query": {
        "servers": "server.view", "server": "server.view", "nodes": "server.view",
        "node": "server.view", "backups": "server.view", "backup": "server.view",
        "accounts": "server.view", "account": "server.view", "dnsZones": "server.view",
        "dnsZone": "server.view", "resource": ANY, "providers": "server.view",
        "placementCandidates": "server.view", "operation": "server.view",
        "invoices": "billing.read", "invoice": "billing.read", "customerLinks": "billing.read",
        "auditLog": "audit.read", "apiKeys": "admin", "viewer": ANY,
        "automationPolicies": "admin", "automationPaused": "admin",
        "automationRuns": "billing.read", "automationRun": "billing.read",
        "catalogue": "server.view",
    },
    "Mutation": {
        "createServer": "server.create", "startServer": "server.start",
        "stopServer": "server.stop", "killServer": "server.stop",
        "restartServer": "server.restart", "suspendServer": "server.suspend",
        "unsuspendServer": "server.suspend", "reinstallServer": "server.reinstall",
        "updateServerResources": "server.update", "deleteServer": "server.delete",
        "grantServerAccess": "server.access", "revokeServerAccess": "server.access",
        "createBackup": "backup.create", "restoreBackup": "backup.restore",
        "deleteBackup": "backup.delete", "createAccount": "account.write",
        "suspendAccount": "account.write", "unsuspendAccount": "account.write",
        "changeAccountPackage": "account.write", "changeAccountPassword": "account.write",
        "deleteAccount": "account.write", "createDnsZone": "dns.write",
        "deleteDnsZone": "dns.write", "upsertDnsRecord": "dns.write",
        "deleteDnsRecord": "dns.write", "finalizeInvoice": "billing.write",
        "payInvoice": "billing.write", "voidInvoice": "billing.write",
        "sendInvoice": "billing.write", "createInvoice": "billing.write",
        "checkout": "billing.write", "capturePayment": "billing.write",
        "refundInvoice": "billing.write", "linkCustomer": "customer.write",
        "unlinkCustomer": "customer.write", "createApiKey": "admin", "revokeApiKey": "admin",
        "createAutomationPolicy": "admin", "updateAutomationPolicy": "admin",
        "deleteAutomationPolicy": "admin", "setAutomationPaused": "admin",
        "runAutomationPolicy": "admin", "cancelCustomerServices": "admin",
        "retryAutomationRun": "admin", "callOffAutomationRun": "admin",
        "provisionService": "server.create", "createLoginUrl": "login.create",
        "resetServerPassword": "server.password",
        # A site's custom domains are DNS the customer points at the proxy; the
        # proxy switch and the plan change the server itself.
        "addSiteDomain": "dns.write", "removeSiteDomain": "dns.write",
        "setSiteProxy": "server.update", "changeServerPlan": "server.update",
        "createDatabase": "account.write",
    },
    "Subscription": {
        "serverStatusChanged": "server.view", "nodeStatusChanged": "server.view",
        "backupStatusChanged": "server.view", "accountStatusChanged": "server.view",
        "operationUpdated": "server.view", "invoiceStatusChanged": "billing.read",
        "automationRunUpdated": "billing.read",
    },
}

# Root fields a customer-bound key may never use, whatever its scopes: they are about the
# whole installation, not one customer's resources.
NOT_FOR_CUSTOMERS = frozenset({"auditLog", "apiKeys", "createApiKey", "revokeApiKey",
                               "linkCustomer", "unlinkCustomer", "placementCandidates",
                               "createServer", "createAccount", "createDnsZone",
                               "automationPolicies", "automationPaused",
                               "createAutomationPolicy", "updateAutomationPolicy",
                               "deleteAutomationPolicy", "setAutomationPaused",
                               "runAutomationPolicy", "cancelCustomerServices",
                               "retryAutomationRun", "callOffAutomationRun",
                               # invoices are issued and money given back by the business,
                               # not by a customer's own key (it may still pay: checkout)
                               "createInvoice", "refundInvoice",
                               "provisionService",
                               # a plan raises the site's quotas: the billing system sells it
                               # (its upgradeServer); customers cannot bypass quotas
                               "changeServerPlan"})


# ``resource(id:)`` reads any type: it needs the scope of the type the id names (checked in
# the resolver), as ``invoice(id:)`` or ``server(id:)`` would.
READ_SCOPE = {ResourceType.INVOICE: "billing.read"}  # every other type: server.view


def check_read(viewer: Viewer, kind: ResourceType) -> None:
    needed = READ_SCOPE.get(kind, "server.view")
    if needed not in viewer.scopes and "admin" not in viewer.scopes:
        raise Forbidden(f"this key lacks the {needed} scope", scope=needed)


def check(viewer: Viewer, parent: str, field: str) -> None:
    needed = REQUIRED.get(parent, {}).get(field)
    if needed is None:
        raise Forbidden(f"{parent}.{field} has no scope rule; refusing by default")
    if viewer.customer_ref is not None and field in NOT_FOR_CUSTOMERS:
        raise Forbidden(f"customer-bound keys cannot use {field}")
    if needed and needed not in viewer.scopes and "admin" not in viewer.scopes:
        raise Forbidden(f"this key lacks the {needed} scope", scope=needed)


async def viewer_for_key(keys: ApiKeys, raw: str | None) -> Viewer:
    if not raw:
        raise Unauthenticated("send an API key in x-api-key or Authorization: Bearer")
    info = await keys.find(raw.strip())
    if info is None or not info.active:
        raise Unauthenticated("this API key is unknown, revoked or expired")
    return Viewer(name=f"key:{info.id}:{info.name}", scopes=frozenset(info.scopes),
                  customer_ref=info.customer_ref, key_id=info.id,
                  rate_limit_per_minute=info.rate_limit_per_minute)


def validate_scopes(scopes: list[str]) -> list[str]:
    from panelql.application.errors import BadUserInput

    unknown = sorted(set(scopes) - SCOPES)
    if unknown or not scopes:
        raise BadUserInput(f"unknown scopes: {', '.join(unknown)}" if unknown
                           else "give at least one scope", field="scopes",
                           allowed=sorted(SCOPES))
    return sorted(set(scopes))
