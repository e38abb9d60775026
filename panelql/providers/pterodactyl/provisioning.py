"""The ``POST /api/application/servers`` body (``StoreServerRequest``) from a ServerSpec.

Pterodactyl places a server through an *allocation* (ip:port) that belongs to a node, so
creating on a chosen node means picking a free allocation there. ``spec.options`` may carry:
``allocation_id`` (use it as is), ``deploy_locations`` (let the panel place it instead),
``docker_image``, ``startup``, ``environment`` (otherwise read from the egg, which needs the
nest: ``template="<nest>/<egg>"``), ``feature_limits``, ``swap``, ``io``,
``start_on_completion``, ``skip_scripts``.
"""

from __future__ import annotations

from typing import Any

from panelql.domain.records import ServerSpec
from panelql.providers.errors import Conflict, InvalidRequest
from panelql.providers.pterodactyl.client import PterodactylApi

DEFAULT_IO = 500
DEFAULT_FEATURE_LIMITS = {"databases": 0, "allocations": 1, "backups": 3}


def parse_template(template: str | None, provider: str) -> tuple[str | None, str]:
    """``"5"`` → (None, "5"); ``"1/5"`` → ("1", "5") as (nest, egg)."""
    parts = (template or "").split("/")
    if not all(p.isdigit() for p in parts) or len(parts) > 2:
        raise InvalidRequest("template must be an egg id or '<nest id>/<egg id>'",
                             provider=provider, fields={"template": "invalid"})
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


async def build_create_body(api: PterodactylApi, spec: ServerSpec) -> dict[str, Any]:
    provider = api.provider
    if not spec.owner_id or not spec.owner_id.isdigit():
        raise InvalidRequest("Pterodactyl servers need an owner (a panel user id)",
                             provider=provider, fields={"owner": "required"})
    nest, egg = parse_template(spec.template, provider)
    opts = spec.options
    body: dict[str, Any] = {
        "name": spec.name, "user": int(spec.owner_id), "egg": int(egg),
        "limits": {
            "memory": spec.resources.memory_mb or 0, "swap": opts.get("swap", 0),
            "disk": spec.resources.disk_mb or 0, "io": opts.get("io", DEFAULT_IO),
            "cpu": round((spec.resources.cpu_cores or 0) * 100), "threads": None,
        },
        "feature_limits": opts.get("feature_limits") or {
            **DEFAULT_FEATURE_LIMITS, "allocations": max(1, len(spec.ports))},
        "start_on_completion": bool(opts.get("start_on_completion", False)),
        "skip_scripts": bool(opts.get("skip_scripts", False)),
    }
    if spec.external_ref:
        body["external_id"] = spec.external_ref
    body.update(await _startup(api, nest, egg, opts))
    if opts.get("deploy_locations"):
        body["deploy"] = {"locations": _ints(opts["deploy_locations"], "deploy_locations",
                                             provider),
                          "dedicated_ip": False,
                          "port_range": [str(p) for p in spec.ports]}
    else:
        body["allocation"] = await _allocation(api, spec)
    return body


async def switch_egg(api: PterodactylApi, server_id: str, template: str) -> None:
    """Point a server at another egg with the egg's defaults, then reinstall it.

    ``PATCH /servers/{id}/startup`` (UpdateServerStartupRequest @706db62c: startup and image
    required, environment present, egg must exist, skip_scripts present) then
    ``POST /servers/{id}/reinstall``; StartupModificationService moves the server's nest with
    the egg.
    """
    nest, egg = parse_template(template, api.provider)
    if nest is None:
        raise InvalidRequest("image must be '<nest id>/<egg id>', as the catalogue lists it",
                             provider=api.provider, fields={"image": "nest"})
    defaults = await _startup(api, nest, egg, {})
    await api.app_item("PATCH", f"/servers/{server_id}/startup", "server", {
        "startup": defaults["startup"], "environment": defaults["environment"],
        "egg": int(egg), "image": defaults["docker_image"], "skip_scripts": False})
    await api.app_send("POST", f"/servers/{server_id}/reinstall")


async def _startup(api: PterodactylApi, nest: str | None, egg: str,
                   opts: dict[str, object]) -> dict[str, Any]:
    """docker_image, startup and environment: given, or the egg's defaults."""
    given: dict[str, Any] = {k: opts[k] for k in ("docker_image", "startup", "environment")
                             if k in opts}
    if {"docker_image", "startup"} <= given.keys():
        return {"environment": {}, **given}
    if nest is None:
        raise InvalidRequest(
            "give options.docker_image and options.startup, or template '<nest>/<egg>' so the "
            "egg's defaults can be used", provider=api.provider, fields={"template": "nest"})
    egg_attrs = await api.app_item("GET", f"/nests/{nest}/eggs/{egg}?include=variables", "egg")
    variables = api.related(egg_attrs, "variables")
    env = {str(v.get("env_variable")): v.get("default_value")
           for v in (variables if isinstance(variables, list) else [])}
    env.update(given.get("environment") or {})
    return {
        "docker_image": given.get("docker_image") or egg_attrs.get("docker_image"),
        "startup": given.get("startup") or egg_attrs.get("startup"),
        "environment": env,
    }


async def _allocation(api: PterodactylApi, spec: ServerSpec) -> dict[str, Any]:
    if spec.options.get("allocation_id") is not None:
        ids = _ints([spec.options["allocation_id"]], "allocation_id", api.provider)
        return {"default": ids[0], "additional": []}
    if not spec.node_id.isdigit():
        raise InvalidRequest("Pterodactyl needs a node id (or options.deploy_locations)",
                             provider=api.provider, fields={"node": "required"})
    free = [a for a in await api.app_list(f"/nodes/{spec.node_id}/allocations")
            if not a.get("assigned")]
    wanted = list(spec.ports)
    picked = [next((a for a in free if a.get("port") == port), None) for port in wanted]
    if wanted and None in picked:
        raise Conflict(f"node {spec.node_id} has no free allocation for ports {wanted}",
                       provider=api.provider)
    chosen = [a for a in picked if a is not None] or free[:1]
    if not chosen:
        raise Conflict(f"node {spec.node_id} has no free allocation", provider=api.provider)
    return {"default": chosen[0]["id"], "additional": [a["id"] for a in chosen[1:]]}


def _ints(values: object, name: str, provider: str) -> list[int]:
    if not isinstance(values, list | tuple) or not all(
            isinstance(v, int) or (isinstance(v, str) and v.isdigit()) for v in values):
        raise InvalidRequest(f"options.{name} must be a list of ids", provider=provider,
                             fields={name: "invalid"})
    return [int(v) for v in values]
