"""Catalyst exchanges, read from catalystctl/catalyst @747660b5 (v1.1.18).

Paths below are relative to catalyst-backend/src/. Values (ids, names, times) are examples;
the structure, status codes and error texts are the upstream's.
"""

from __future__ import annotations

from tests.providers.exchanges import ANY, Exchange

COMMIT = "747660b5"
KEY = "catalyst_k"
BEARER = {"Authorization": f"Bearer {KEY}"}
T = "2026-11-30T10:00:00.000Z"

IDS = {"node": "cmnode0001", "server": "cmsrv0001", "other": "cmsrv0002",
       "nobackup": "cmsrv0003", "user": "cmuser0002", "owner": "cmuser0001",
       "location": "cmloc0001"}

CONNECTION = {"assignedIp": None, "nodeIp": "203.0.113.10", "hostNetworkIp": None,
              "host": "203.0.113.10", "port": 25565, "subdomain": None}

# Every scalar of prisma/schema.prisma model Server, as routes/servers/_helpers.ts
# withConnectionInfo sends it (backup configs redacted, connection added).
SERVER = {
    "id": "cmsrv0001", "uuid": "3f1c2a9e-8d7b-4c1e-9f7a-2b6d5e4c3a21", "name": "Customer 12345",
    "description": None, "templateId": "cmtpl0minecraftpaper", "nodeId": "cmnode0001",
    "locationId": "cmloc0001", "ownerId": "cmuser0001", "status": "stopped",
    "suspendedAt": None, "suspendedByUserId": None, "suspensionReason": None,
    "allocatedMemoryMb": 4096, "allocatedCpuCores": 2, "allocatedDiskMb": 10240,
    "allocatedSwapMb": 0, "ioWeight": 500, "containerId": None, "containerName": None,
    "networkMode": "bridge", "primaryPort": 25565, "primaryIp": None, "subdomain": None,
    "portBindings": {"25565": 25565}, "environment": {"TEMPLATE_IMAGE": "itzg/minecraft-server"},
    "startupCommand": None, "backupStorageMode": "local", "backupRetentionCount": 0,
    "backupRetentionDays": 0, "backupAllocationMb": 10240, "databaseAllocation": 0,
    "backupS3Config": ANY, "backupSftpConfig": ANY, "restartPolicy": "on-failure",
    "crashCount": 0, "maxCrashCount": 5, "lastCrashAt": None, "lastExitCode": None,
    "createdAt": T, "updatedAt": T, "connection": CONNECTION,
}

ACCESS_ROW = {"id": "cmacc0001", "userId": "cmuser0002", "serverId": "cmsrv0001",
              "permissions": ["server.read", "console.read", "file.read"],
              "createdAt": T, "updatedAt": T}

EXCHANGES = [
    # index.ts authenticate: a "catalyst…" Bearer token that does not verify.
    Exchange("bad_key", f"index.ts @{COMMIT}: authenticate, verifyApiKeyService invalid",
             "GET", "/api/servers", None, 401, {"error": "Invalid API key"},
             headers={"Authorization": "Bearer catalyst_wrong"}),
    # index.ts authenticate: no Bearer catalyst… token → session lookup → none.
    Exchange("x_api_key_header", f"index.ts @{COMMIT}: authenticate, session fallback",
             "GET", "/api/servers", None, 401, {"error": "Unauthorized"},
             headers={"x-api-key": KEY}),
    # routes/nodes.ts GET / (admin): nodes with _count and location {id, name}.
    Exchange("list_nodes", f"routes/nodes.ts @{COMMIT}: GET /api/nodes",
             "GET", "/api/nodes", None, 200, {"success": True, "data": [{
                 "id": "cmnode0001", "name": "game-node-1", "description": None,
                 "serverDataDir": "/var/lib/catalyst/servers", "locationId": "cmloc0001",
                 "hostname": "node1.catalyst.test", "publicAddress": "203.0.113.10",
                 "maxMemoryMb": 65536, "maxCpuCores": 16, "memoryOverallocatePercent": 0,
                 "cpuOverallocatePercent": 0, "isOnline": True, "lastSeenAt": T,
                 "createdAt": T, "updatedAt": T, "_count": {"servers": 1},
                 "location": {"id": "cmloc0001", "name": "us-east"}}]},
             headers=BEARER),
    # routes/nodes.ts GET /:nodeId: the node (secret omitted) with its servers.
    Exchange("get_node", f"routes/nodes.ts @{COMMIT}: GET /api/nodes/:nodeId",
             "GET", "/api/nodes/{node}", None, 200, {"success": True, "data": {
                 "id": "cmnode0001", "name": "game-node-1", "description": None,
                 "serverDataDir": "/var/lib/catalyst/servers", "locationId": "cmloc0001",
                 "hostname": "node1.catalyst.test", "publicAddress": "203.0.113.10",
                 "maxMemoryMb": 65536, "maxCpuCores": 16, "memoryOverallocatePercent": 0,
                 "cpuOverallocatePercent": 0, "isOnline": True, "lastSeenAt": T,
                 "createdAt": T, "updatedAt": T,
                 "servers": [{"id": "cmsrv0001", "uuid": SERVER["uuid"], "name": "mc-001",
                              "status": "running"}]}},
             headers=BEARER, ids=IDS),
    # routes/servers/core.ts GET /: withConnectionInfo + latest metrics + effectivePermissions
    # (template/node/location relations are included too; the adapter reads none of them).
    Exchange("list_servers", f"routes/servers/core.ts @{COMMIT}: GET /api/servers",
             "GET", "/api/servers", None, 200, {"success": True, "data": [{
                 **SERVER, "status": "running", "cpuPercent": 45.2, "memoryUsageMb": 2048,
                 "diskUsageMb": 2560, "diskTotalMb": 10240, "template": ANY, "node": ANY,
                 "location": {"id": "cmloc0001", "name": "us-east", "description": None,
                              "createdAt": T},
                 "effectivePermissions": ["server.read"]}]},
             headers=BEARER),
    # lib/validation.ts serverCreateSchema + routes/servers/core.ts POST / (201).
    Exchange("create_server", f"lib/validation.ts serverCreateSchema, routes/servers/core.ts "
             f"@{COMMIT}: POST /api/servers",
             "POST", "/api/servers", {
                 "name": "Customer 12345", "templateId": "cmtpl0minecraftpaper",
                 "nodeId": "{node}", "locationId": "{location}", "ownerId": "{owner}",
                 "allocatedMemoryMb": 4096, "allocatedCpuCores": 2, "allocatedDiskMb": 10240,
                 "backupAllocationMb": 10240, "primaryPort": 25565, "networkMode": "bridge",
                 "environment": {}},
             201, {"success": True, "data": SERVER}, headers=BEARER, ids=IDS),
    # lib/validation.ts validateRequestBody: zod 4 issues as details [{field, message}].
    Exchange("create_server_fractional_cpu", f"lib/validation.ts @{COMMIT}: "
             "validateRequestBody, z.number().int()",
             "POST", "/api/servers", {
                 "name": "Customer 12345", "templateId": "cmtpl0minecraftpaper",
                 "nodeId": "{node}", "locationId": "{location}",
                 "allocatedMemoryMb": 4096, "allocatedCpuCores": 1.5, "allocatedDiskMb": 10240,
                 "primaryPort": 25565, "networkMode": "bridge"},
             400, {"error": "Invalid request body", "details": [
                 {"field": "allocatedCpuCores",
                  "message": "Invalid input: expected int, received number"}]},
             headers=BEARER, ids=IDS),
    Exchange("create_server_without_location", f"lib/validation.ts @{COMMIT}: locationId "
             "is required by serverCreateSchema",
             "POST", "/api/servers", {
                 "name": "Customer 12345", "templateId": "cmtpl0minecraftpaper",
                 "nodeId": "{node}", "allocatedMemoryMb": 4096, "allocatedCpuCores": 2,
                 "allocatedDiskMb": 10240, "primaryPort": 25565, "networkMode": "bridge"},
             400, {"error": "Invalid request body", "details": [
                 {"field": "locationId",
                  "message": "Invalid input: expected string, received undefined"}]},
             headers=BEARER, ids=IDS),
    # routes/servers/power.ts POST /:serverId/install: sets "installing", agent installs.
    Exchange("install", f"routes/servers/power.ts @{COMMIT}: POST /:serverId/install",
             "POST", "/api/servers/{server}/install", {}, 200,
             {"success": True, "message": "Install command sent to agent"},
             headers=BEARER, ids=IDS),
    # routes/servers/invites.ts GET /:serverId/permissions.
    Exchange("list_access", f"routes/servers/invites.ts @{COMMIT}: GET /:serverId/permissions",
             "GET", "/api/servers/{server}/permissions", None, 200, {
                 "success": True, "presets": {},
                 "data": [{**ACCESS_ROW, "user": {"id": "cmuser0002",
                                                  "email": "player2@example.com",
                                                  "username": "player2"}}]},
             headers=BEARER, ids=IDS),
    # routes/servers/invites.ts POST /:serverId/access (owner only; upsert).
    Exchange("grant_access", f"routes/servers/invites.ts @{COMMIT}: POST /:serverId/access",
             "POST", "/api/servers/{server}/access",
             {"targetUserId": "{user}",
              "permissions": ["server.read", "console.read", "file.read"]},
             200, {"success": True, "data": ACCESS_ROW}, headers=BEARER, ids=IDS),
    Exchange("grant_access_with_user_id", f"routes/servers/invites.ts @{COMMIT}: the body "
             "field is targetUserId",
             "POST", "/api/servers/{server}/access",
             {"userId": "{user}", "permissions": ["server.read"]},
             400, {"error": "targetUserId and permissions are required"},
             headers=BEARER, ids=IDS),
    Exchange("grant_access_not_owner", f"routes/servers/invites.ts @{COMMIT}: "
             "server.ownerId !== userId → 403",
             "POST", "/api/servers/{other}/access",
             {"targetUserId": "{user}", "permissions": ["server.read"]},
             403, {"error": "Forbidden"}, headers=BEARER, ids=IDS),
    # routes/servers/invites.ts DELETE: prisma.serverAccess.delete of a missing row throws
    # P2025; index.ts setErrorHandler answers 500 "Internal Server Error".
    Exchange("revoke_missing_access", f"routes/servers/invites.ts, index.ts setErrorHandler "
             f"@{COMMIT}: DELETE /:serverId/access/:targetUserId without an entry",
             "DELETE", "/api/servers/{server}/access/{user}", None, 500,
             {"error": "Internal Server Error"}, headers=BEARER, ids=IDS),
    Exchange("revoke_access", f"routes/servers/invites.ts @{COMMIT}: DELETE "
             "/:serverId/access/:targetUserId",
             "DELETE", "/api/servers/{server}/access/{user}", None, 200, {"success": True},
             headers=BEARER, ids=IDS),
    # routes/servers/power.ts unsuspend of a server that is not suspended.
    Exchange("unsuspend_active", f"routes/servers/power.ts @{COMMIT}: POST "
             "/:serverId/unsuspend", "POST", "/api/servers/{server}/unsuspend", {}, 409,
             {"error": "Server is not suspended"}, headers=BEARER, ids=IDS),
    # routes/backups.ts POST: no allocation and no S3/SFTP → 403 (a disabled feature).
    Exchange("backup_disabled", f"routes/backups.ts @{COMMIT}: POST /:serverId/backups",
             "POST", "/api/servers/{nobackup}/backups", {}, 403,
             {"error": "Backup allocation disabled. Configure S3 or SFTP to enable backups."},
             headers=BEARER, ids=IDS),
    # routes/admin.ts POST /users: 201 with the user, no envelope.
    Exchange("create_user", f"routes/admin.ts @{COMMIT}: POST /api/admin/users",
             "POST", "/api/admin/users",
             {"email": "buyer@example.com", "username": "buyer12345",
              "password": "s3cure-Passw0rd!"},
             201, {"id": "cmuser0099", "email": "buyer@example.com", "username": "buyer12345",
                   "createdAt": T, "updatedAt": T, "roles": [], "warning": None},
             headers=BEARER),
]

BY_NAME = {e.name: e for e in EXCHANGES}
