"""Pterodactyl's ``POST /api/application/users`` and ``GET /users/external/{id}``, as the panel
validates them (pterodactyl/panel @706db62c):

- ``StoreUserRequest::rules`` takes ``external_id, email, username, password, language,
  root_admin`` from ``User::$validationRules`` plus ``first_name``/``last_name`` (the model's
  ``name_first``/``name_last`` rules): email ``required|email|between:1,191|unique``,
  external_id ``sometimes|nullable|string|max:191|unique``, username
  ``required|between:1,191|unique`` plus ``Rules\\Username`` (``^[a-z0-9]([\\w\\.-]+)[a-z0-9]$`` on
  the lower-cased value), names ``required|string|between:1,191``;
- ``StoreUserRequest::attributes`` renames external_id to "Third Party Identifier" in messages;
- ``User::setUsernameAttribute`` stores the username lower-cased;
- ``Handler::invalidJson`` answers 422 with one ``errors[]`` entry per failed rule, each with
  ``meta.source_field`` and ``meta.rule`` (the snake-cased rule name);
- ``UserController::store`` answers 201 with the ``UserTransformer`` item.
"""

from __future__ import annotations

import re
import time
import uuid as uuidlib
from typing import Any

from starlette.responses import JSONResponse

MAX = 191
USERNAME = re.compile(r"^[a-z0-9]([\w.-]+)[a-z0-9]$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
LABEL = {"external_id": "Third Party Identifier", "first_name": "first name",
         "last_name": "last name"}


def _label(name: str) -> str:
    return LABEL.get(name, name)


def _failures(users: dict[int, dict[str, Any]], body: dict[str, Any]
              ) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for name in ("email", "username", "first_name", "last_name"):
        value = body.get(name)
        if value is None or value == "":
            out.append((name, "required", f"The {_label(name)} field is required."))
        elif not isinstance(value, str):
            out.append((name, "string", f"The {_label(name)} field must be a string."))
        elif len(value) > MAX:
            out.append((name, "between",
                        f"The {_label(name)} field must be between 1 and {MAX} characters."))
    email, username, external = body.get("email"), body.get("username"), body.get("external_id")
    if isinstance(email, str) and email and not EMAIL.match(email):
        out.append(("email", "email", "The email field must be a valid email address."))
    if isinstance(username, str) and username and not USERNAME.match(username.lower()):
        out.append(("username", "p_username",
                    "The username must start and end with alpha-numeric characters and "
                    "contain only letters, numbers, dashes, underscores, and periods."))
    if external is not None and (not isinstance(external, str) or len(external) > MAX):
        out.append(("external_id", "string",
                    f"The {_label('external_id')} field must be a string of at most {MAX} "
                    "characters."))
    taken = {
        "email": isinstance(email, str) and any(
            u["email"].lower() == email.lower() for u in users.values()),
        "username": isinstance(username, str) and any(
            u["username"] == username.lower() for u in users.values()),
        "external_id": isinstance(external, str) and any(
            u.get("external_id") == external for u in users.values()),
    }
    out += [(name, "unique", f"The {_label(name)} has already been taken.")
            for name, hit in taken.items() if hit]
    return out


def store_user(users: dict[int, dict[str, Any]], body: dict[str, Any]) -> JSONResponse:
    failures = _failures(users, body)
    if failures:
        return JSONResponse({"errors": [
            {"code": "ValidationException", "status": "422", "detail": detail,
             "meta": {"source_field": name, "rule": rule}} for name, rule, detail in failures
        ]}, status_code=422)
    uid = max(users, default=0) + 1
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    users[uid] = {
        "id": uid, "external_id": body.get("external_id"), "uuid": str(uuidlib.uuid4()),
        "username": str(body["username"]).lower(), "email": body["email"],
        "first_name": body["first_name"], "last_name": body["last_name"],
        "language": body.get("language") or "en", "root_admin": bool(body.get("root_admin")),
        "2fa": False, "created_at": now, "updated_at": now,
    }
    return JSONResponse({"object": "user", "attributes": users[uid],
                         "meta": {"resource": f"/api/application/users/{uid}"}},
                        status_code=201)


def external_user(users: dict[int, dict[str, Any]], external_id: str) -> JSONResponse:
    found = next((u for u in users.values() if u.get("external_id") == external_id), None)
    if found is None:
        return JSONResponse({"errors": [{
            "code": "NotFoundHttpException", "status": "404",
            "detail": "The requested resource could not be found on the server."}]},
            status_code=404)
    return JSONResponse({"object": "user", "attributes": found})
