"""Pterodactyl subuser exchanges, read from pterodactyl/panel @706db62c.

Client API routes/api-client.php ``/servers/{server}/users``; the controller is
app/Http/Controllers/Api/Client/Servers/SubuserController.php, the validation
app/Http/Requests/Api/Client/Servers/Subusers/{Store,Update}SubuserRequest.php, the body
app/Transformers/Api/Client/SubuserTransformer.php (UserTransformer + permissions).
Values are examples; structure, statuses and the permission handling are the panel's.
"""

from __future__ import annotations

from tests.providers.exchanges import Exchange

COMMIT = "706db62c"
CLIENT_KEY = "ptlc_k"
APP_KEY = "ptla_k"
CLIENT = {"Authorization": f"Bearer {CLIENT_KEY}"}

IDS = {"server": "1a7ce997", "user_uuid": "d5ef8a8e-2222-4222-8222-bbbbbbbbbbbb",
       "email": "player2@example.com"}


def subuser(permissions: list[str]) -> dict[str, object]:
    return {"object": "server_subuser", "attributes": {
        "uuid": "d5ef8a8e-2222-4222-8222-bbbbbbbbbbbb", "username": "player2",
        "email": "player2@example.com",
        "image": "https://gravatar.com/avatar/3b1d7c4a0e1f2a3b4c5d6e7f8a9b0c1d",
        "2fa_enabled": True, "created_at": "2023-02-01T00:00:00+00:00",
        "permissions": permissions}}


# The seed's "Basic Management" set as the adapter maps it.
BASIC = ["websocket.connect", "control.start", "control.stop", "control.restart",
         "control.console"]

EXCHANGES = [
    # StoreSubuserRequest: email + permissions array; getDefaultPermissions keeps known names
    # and appends websocket.connect (already there: array_unique keeps one).
    Exchange("create_subuser", f"SubuserController::store @{COMMIT}",
             "POST", "/api/client/servers/{server}/users",
             {"email": "{email}", "permissions": BASIC},
             200, subuser(BASIC), headers=CLIENT, ids=IDS),
    # Unknown names are dropped silently (array_intersect), never a 422.
    Exchange("create_subuser_unknown_names", f"SubuserController::getDefaultPermissions "
             f"@{COMMIT}: array_intersect, then websocket.connect",
             "POST", "/api/client/servers/{server}/users",
             {"email": "{email}", "permissions": ["control.start", "console.write",
                                                   "server.delete"]},
             200, subuser(["control.start", "websocket.connect"]), headers=CLIENT, ids=IDS),
    Exchange("update_subuser", f"SubuserController::update @{COMMIT}",
             "POST", "/api/client/servers/{server}/users/{user_uuid}",
             {"permissions": ["websocket.connect", "control.console"]},
             200, subuser(["websocket.connect", "control.console"]), headers=CLIENT, ids=IDS),
    # Laravel's "required" fails an empty array.
    Exchange("update_subuser_empty", f"UpdateSubuserRequest::rules @{COMMIT}",
             "POST", "/api/client/servers/{server}/users/{user_uuid}", {"permissions": []},
             422, {"errors": [{"code": "ValidationException", "status": "422",
                               "detail": "The permissions field is required.",
                               "meta": {"source_field": "permissions", "rule": "required"}}]},
             headers=CLIENT, ids=IDS),
    Exchange("list_subusers", f"SubuserController::index @{COMMIT}: a collection, no paging",
             "GET", "/api/client/servers/{server}/users", None, 200,
             {"object": "list", "data": [subuser(BASIC)]}, headers=CLIENT, ids=IDS),
    Exchange("delete_subuser", f"SubuserController::delete @{COMMIT}: 204",
             "DELETE", "/api/client/servers/{server}/users/{user_uuid}", None, 204, None,
             headers=CLIENT, ids=IDS),
]

BY_NAME = {e.name: e for e in EXCHANGES}
