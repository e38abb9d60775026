"""VirtFusion users, single sign-on tokens and root password resets, for the simulator.

VirtFusion publishes no source. Routes and bodies come from its API reference
(``POST /users {name,email,extRelationId,sendMail}`` → 201, ``GET
/users/{extRelationId}/byExtRelation``, ``POST /users/{extRelationId}/serverAuthenticationTokens
/{serverId}``, ``POST /servers/{id}/resetPassword {user,sendMail}``), the endpoint catalogue at
virtfusion.apidog.io ("Generate a set of login tokens", "Reset a server password") and a public
Blesta VirtFusion module, which sends the browser to ``https://<panel host>`` +
``data.authentication.endpoint_complete`` of the token answer. Unverified, and chosen here:
the user object's fields beyond id/name/email/extRelationId, that extRelationId is an integer
unique per panel (the billing modules pass their numeric client id), the 422 wording of a taken
email, the ``/sso/...`` path, the token's single use and lifetime, and the reset answer
``data.expectedPassword``.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from panelql_sim.framework import json_body

if TYPE_CHECKING:
    from panelql_sim.virtfusion import VirtFusionSim

TOKEN_SECONDS = 300.0
SSO_PATH = "/sso/login/"


def user_json(user: dict[str, Any]) -> dict[str, Any]:
    return {"id": user["id"], "name": user["name"], "email": user["email"],
            "extRelationId": user.get("extRelationId"), "admin": False, "suspended": False,
            "timezone": "UTC", "created": user.get("created"), "updated": user.get("created")}


def _invalid(errors: dict[str, list[str]]) -> JSONResponse:
    return JSONResponse({"message": "The given data was invalid.", "errors": errors},
                        status_code=422)


def _by_ext(sim: VirtFusionSim, raw: str) -> dict[str, Any] | None:
    return next((u for u in sim.users.values() if str(u.get("extRelationId")) == raw), None)


async def create_user(sim: VirtFusionSim, request: Request) -> Response:
    body = await json_body(request)
    name, email, ext = body.get("name"), body.get("email"), body.get("extRelationId")
    errors: dict[str, list[str]] = {}
    if not isinstance(name, str) or not name.strip():
        errors["name"] = ["The name field is required."]
    if not isinstance(email, str) or "@" not in email:
        errors["email"] = ["The email must be a valid email address."]
    elif any(u["email"].lower() == email.lower() for u in sim.users.values()):
        errors["email"] = ["The email has already been taken."]
    if not isinstance(ext, int) or isinstance(ext, bool) or ext < 1:
        errors["extRelationId"] = ["The ext relation id must be an integer."]
    elif _by_ext(sim, str(ext)) is not None:
        errors["extRelationId"] = ["The ext relation id has already been taken."]
    if errors:
        return _invalid(errors)
    uid = max(sim.users, default=0) + 1
    sim.users[uid] = {"id": uid, "name": name, "email": email, "extRelationId": ext,
                      "created": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())}
    return JSONResponse({"data": user_json(sim.users[uid])}, status_code=201)


async def by_ext_relation(sim: VirtFusionSim, request: Request) -> Response:
    user = _by_ext(sim, request.path_params["ext"])
    if user is None:
        return JSONResponse({"errors": ["user not found"]}, status_code=404)
    return JSONResponse({"data": user_json(user)})


async def login_tokens(sim: VirtFusionSim, request: Request) -> Response:
    user = _by_ext(sim, request.path_params["ext"])
    server = sim.servers.get(request.path_params["sid"])
    if user is None or server is None:
        return JSONResponse({"errors": ["user or server not found"]}, status_code=404)
    if server.owner_id != user["id"]:
        return JSONResponse({"errors": ["the server does not belong to this user"]},
                            status_code=403)
    token = secrets.token_urlsafe(32)
    sim.sso_tokens[token] = (user["id"], server.id, time.monotonic() + TOKEN_SECONDS)
    return JSONResponse({"data": {"authentication": {
        "tokens": {"1": token}, "endpoint": SSO_PATH,
        "endpoint_complete": f"{SSO_PATH}{token}?server={server.id}"}}})


async def sso(sim: VirtFusionSim, request: Request) -> Response:
    """What a browser opening the link sees: logged in once, refused afterwards."""
    entry = sim.sso_tokens.pop(request.path_params["token"], None)
    if entry is None or entry[2] < time.monotonic():
        return HTMLResponse("<h1>This login link has expired or was already used.</h1>",
                            status_code=403)
    user = sim.users[entry[0]]
    sim.sso_logins.append((user["id"], entry[1]))
    return HTMLResponse(f"<h1>Logged in as {user['email']}: server {entry[1]}</h1>")


async def reset_password(sim: VirtFusionSim, request: Request) -> Response:
    server = sim.servers.get(request.path_params["sid"])
    if server is None:
        return JSONResponse({"errors": ["server not found"]}, status_code=404)
    body = await json_body(request)
    if body.get("user") not in ("root", "administrator"):
        return _invalid({"user": ["The selected user is invalid."]})
    if server.built is None:
        return JSONResponse({"errors": ["server is not built"]}, status_code=409)
    password = secrets.token_urlsafe(12)
    sim.root_passwords[server.id] = password
    return JSONResponse({"data": {"expectedPassword": password}})
