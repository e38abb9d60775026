"""The ``panelql`` command line: parsing and printing. What the admin commands do is in
``panelql.admin``; the gateway itself is ``panelql.app``.

Exit codes: 0 success, 1 the operation failed (a provider check failed, no such key…),
2 bad usage or configuration, 130 interrupted. User errors print one line, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError

from panelql import admin
from panelql.admin import CliError
from panelql.db.connections import DuplicateConnection, StoredConnectionError
from panelql.observability import configure_logging
from panelql.secrets import SecretKeyError, generate_key
from panelql.settings import (
    ConfigError,
    ProviderEntry,
    Settings,
    config_warnings,
    load_settings,
)

EXAMPLE_QUERY = """{ servers(first: 100) { edges { node { id name status provider { kind }
      node { name } owner { email } } } } }"""


def _settings(args: argparse.Namespace, **overrides: object) -> Settings:
    return load_settings(getattr(args, "config", None), **overrides)


def _err(message: str) -> None:
    print(f"panelql: {message}", file=sys.stderr)


def _one_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0]}" if text else type(cause).__name__


# -- serve / demo -------------------------------------------------------------------------------

def app_factory() -> Any:
    """For ``serve --workers N``: each worker process builds its app from the environment."""
    from panelql.app import create_app

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from panelql.app import create_app
    from panelql.db.migrate import upgrade

    settings = _settings(args)
    if settings.auto_migrate:  # once per start, here; the app (and each worker) does not again
        asyncio.run(upgrade(settings.database_url, notify=_err))
        settings = settings.model_copy(update={"auto_migrate": False})
    # Fail here, with one line, rather than in the lifespan with a traceback.
    asyncio.run(admin.all_connections(settings))
    configure_logging(settings.log_level, settings.log_format)
    host, port = args.host or settings.host, args.port or settings.port
    common: dict[str, Any] = {"host": host, "port": port, "log_level": settings.log_level,
                              "ws": "websockets-sansio", "log_config": None}
    if args.workers > 1:
        if not settings.redis_url:
            _err("warning: several workers without PANELQL_REDIS_URL do not share events; "
                 "each worker polls on its own")
        if settings.config_file:
            os.environ["PANELQL_CONFIG_FILE"] = str(settings.config_file)
        os.environ["PANELQL_AUTO_MIGRATE"] = "false"  # migrated above, not once per worker
        # uvicorn restarts a worker that misses its 5 s health ping; on a busy host that kills
        # healthy workers mid-request, so allow what a loaded machine needs.
        uvicorn.run("panelql.cli:app_factory", factory=True, workers=args.workers,
                    timeout_worker_healthcheck=30, **common)
    else:
        uvicorn.run(create_app(settings), **common)
    return 0


def demo_banner(url: str, key: str, created: bool, key_file: Path) -> str:
    note = "created" if created else "reused"
    return f"""
API key ({note}, admin scope; also in {key_file}):
  {key}

Every request needs it. With curl:
  curl -s {url} -H 'content-type: application/json' -H 'x-api-key: {key}' \\
    -d '{{"query":"{{ providers {{ name kind health {{ ok }} }} }}"}}'

In GraphiQL ({url}, served by the gateway, works offline) replace the key in the Headers tab:
  {{"x-api-key": "{key}"}}

Try:
{EXAMPLE_QUERY}
"""


def billing_clock_url(entries: list[Any]) -> str:
    """The Stripe simulator's clock (POST /__sim/clock lets days pass; docs/billing-
    integration.md#billing-driven-automation)."""
    base = next((str(e.base_url) for e in entries if e.name == "stripe"), None)
    return f"{base.rstrip('/')}/__sim/clock" if base else "(no Stripe simulator)"


def cmd_demo(args: argparse.Namespace) -> int:
    import uvicorn

    from panelql.app import create_app
    from panelql_sim.demo import call_back, demo_config, start_panels
    from panelql_sim.runner import BackgroundServers

    key_file = Path(args.key_file)
    background = BackgroundServers()
    try:
        sims, entries = start_panels(background)
        settings = _settings(args, providers=[e.model_dump() for e in entries])
        if not settings.ws_allowed_origins:
            # The local demo admits examples/dashboard/index.html opened as a file (Origin
            # "null"); a key is still needed to subscribe.
            settings = settings.model_copy(update={"ws_allowed_origins": ["*"]})
        configure_logging("warning", settings.log_format)
        key, created = asyncio.run(admin.ensure_demo_key(settings, key_file))
        config_file = key_file.parent / "demo.toml"
        config_file.write_text(demo_config(entries))
        port = args.port or settings.port
        url = f"http://{settings.host}:{port}/graphql"
        local = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
        call_back(sims, entries, f"http://{local}:{port}")
        billing_clock = billing_clock_url(entries)
        print(f"PanelQL demo: {len(entries)} simulated panels "
              f"({', '.join(e.kind for e in entries)})")
        print(f"GraphiQL: {url}")
        print(demo_banner(url, key, created, key_file), flush=True)
        print(f"The simulated panels' connections: panelql --config {config_file} providers list",
              flush=True)
        print(f"Billing automation: let days pass on the Stripe simulator with\n"
              f"  curl -s -X POST {billing_clock} -d '{{\"advance_days\": 4}}'\n"
              f"(docs/billing-integration.md#billing-driven-automation)\n", flush=True)
        uvicorn.run(create_app(settings), host=settings.host, port=port,
                    log_level="warning", ws="websockets-sansio", log_config=None)
    finally:
        background.stop()
    return 0


# -- db / schema / config -----------------------------------------------------------------------

def cmd_db(args: argparse.Namespace) -> int:
    from panelql.db.migrate import current_revision, upgrade

    settings = _settings(args)
    if args.db_command == "upgrade":
        before = asyncio.run(current_revision(settings.database_url))
        print("migrating…", file=sys.stderr, flush=True)
        asyncio.run(upgrade(settings.database_url, notify=_err))
        after = asyncio.run(current_revision(settings.database_url))
        if before == after:
            print(f"database already at the latest revision ({after})")
        else:
            print(f"database migrated from {before or '(empty)'} to {after}")
    else:
        print(asyncio.run(current_revision(settings.database_url)) or "(empty database)")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from panelql.schema.root import SDL_PATH, export_sdl

    if args.output == "-":
        sys.stdout.write(export_sdl())
        return 0
    target = Path(args.output) if args.output else _default_sdl_target(SDL_PATH)
    target.write_text(export_sdl())
    print(f"wrote {target}", file=sys.stderr)
    return 0


def _default_sdl_target(packaged: Path) -> Path:
    """In a source checkout, the SDL file the drift test reads; in an installed package, never
    site-packages: ``./schema.graphql``."""
    if "site-packages" in packaged.parts or "dist-packages" in packaged.parts:
        return Path("schema.graphql")
    return packaged


def redacted_settings(settings: Settings) -> dict[str, Any]:
    """The effective settings with every secret replaced (literal credentials, URL passwords,
    the secret key); env references stay visible, they are names, not values."""
    from sqlalchemy.engine import make_url

    data = settings.model_dump(mode="json")
    for key in ("database_url", "redis_url"):
        if data.get(key):
            try:
                data[key] = make_url(data[key]).render_as_string(hide_password=True)
            except Exception:  # not a URL SQLAlchemy understands: hide it entirely
                data[key] = "**********"
    data["secret_key"] = "**********" if settings.secret_key else None
    for entry in data.get("providers", []):
        entry["credentials"] = {k: (v if isinstance(v, dict) else "**********")
                                for k, v in entry.get("credentials", {}).items()}
    return data


def cmd_config(args: argparse.Namespace) -> int:
    settings = _settings(args)  # ConfigError → exit 2 with the key that is wrong
    if settings.secret_key:
        admin.cipher_for(settings)  # a malformed key is a configuration error too
    print(json.dumps(redacted_settings(settings), indent=2, default=str))
    for warning in config_warnings(settings):
        _err(f"warning: {warning}")
    print(f"configuration OK ({len(settings.providers)} connection(s) in the file)",
          file=sys.stderr)
    return 0


# -- providers ----------------------------------------------------------------------------------

def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"{flag}: expected KEY=VALUE, got {item.split('=')[0]!r}…", 2)
        out[key] = value
    return out


def _option_value(raw: str) -> Any:
    try:
        return json.loads(raw)  # numbers, booleans, lists; anything else stays a string
    except json.JSONDecodeError:
        return raw


def cmd_providers(args: argparse.Namespace) -> int:
    settings = _settings(args)
    command = args.providers_command
    if command == "list":
        rows = asyncio.run(admin.list_connections(settings))
        for row in rows:
            print(f"{row.name}\t{row.kind}\t{row.base_url}\t{row.source}\t{row.region or '-'}")
        if not rows:
            _err("no provider connections: add [[providers]] to the config file (--config or "
                 "PANELQL_CONFIG_FILE) or use `panelql providers add`; while `make demo` runs, "
                 "its panels are in .panelql/demo.toml (panelql --config .panelql/demo.toml "
                 "providers list)")
        return 0
    if command == "test":
        return _providers_test(settings, args)
    if command == "add":
        return _providers_add(settings, args)
    if command == "remove":
        asyncio.run(admin.remove_connection(settings, args.name))
        print(f"removed {args.name}; running gateways drop it at their next start")
        return 0
    count = asyncio.run(admin.rotate_secrets(settings))
    print(f"re-encrypted {count} stored connection(s) with the newest key; older keys can "
          "now be removed from PANELQL_SECRET_KEY")
    return 0


def _providers_add(settings: Settings, args: argparse.Namespace) -> int:
    credentials = _pairs(args.credential, "--credential")
    for key, env in _pairs(args.credential_env, "--credential-env").items():
        if env not in os.environ:
            raise CliError(f"--credential-env {key}={env}: {env} is not set", 2)
        credentials[key] = os.environ[env]
    options = {k: _option_value(v) for k, v in _pairs(args.option, "--option").items()}
    try:  # the same validation as a [[providers]] entry in the file
        entry = ProviderEntry(name=args.name, kind=args.kind, base_url=args.base_url,
                              credentials=dict(credentials), options=options,
                              timeout_seconds=args.timeout, region=args.region)
    except ValueError as exc:
        raise CliError(f"invalid connection: {_first_error(exc)}", 2) from None
    if args.check:
        print(f"checking {entry.name}…", file=sys.stderr, flush=True)
        result = asyncio.run(admin.check_connection(entry.to_connection("connection"),
                                                    entry.timeout_seconds))
        if not result.ok:
            raise CliError(f"{entry.name} failed its health check ({result.error}); not saved")
    asyncio.run(admin.add_connection(
        settings, name=entry.name, kind=entry.kind, base_url=entry.base_url,
        credentials=credentials, options=options, region=entry.region,
        timeout_seconds=entry.timeout_seconds))
    print(f"added {entry.name} ({entry.kind}, {len(credentials)} credential(s) encrypted); "
          "gateways load it at their next start")
    return 0


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = str(first.get("msg", "")).removeprefix("Value error, ")
        return f"{where}: {message}" if where else message
    return str(exc)


def _providers_test(settings: Settings, args: argparse.Namespace) -> int:
    configs = asyncio.run(admin.all_connections(settings))
    if args.names:
        unknown = sorted(set(args.names) - {c.name for c in configs})
        if unknown:
            raise CliError(f"unknown connection(s): {', '.join(unknown)}", 2)
        configs = [c for c in configs if c.name in args.names]
    if not configs:
        print("no provider connections configured")
        return 0
    print(f"checking {len(configs)} connection(s)…", file=sys.stderr, flush=True)

    def report(r: admin.HealthResult) -> None:
        verdict = "ok  " if r.ok else "FAIL"
        detail = f"  {r.error}" if r.error else ""
        print(f"{verdict} {r.name:<24} {r.kind:<12} {r.latency_ms:8.1f} ms  auth={r.auth}{detail}",
              flush=True)

    results = asyncio.run(admin.check_connections(configs, args.timeout, report))
    failed = [r.name for r in results if not r.ok]
    if failed:
        _err(f"{len(failed)} of {len(results)} connection(s) failed: {', '.join(sorted(failed))}")
        return 1
    return 0


# -- keys ---------------------------------------------------------------------------------------

def cmd_keys(args: argparse.Namespace) -> int:
    if args.keys_command == "secret":
        print(generate_key())
        print("export it as PANELQL_SECRET_KEY (prepend it, comma-separated, to rotate)",
              file=sys.stderr)
        return 0
    settings = _settings(args)
    if args.keys_command == "create":
        return _keys_create(settings, args)
    if args.keys_command == "list":
        keys = asyncio.run(admin.list_keys(settings))
        print("id\tname\tprefix\tstatus\tscopes\tcustomer\trate/min\texpires")
        for k in keys:
            status = "active" if k.active else ("revoked" if k.revoked_at else "expired")
            expires = k.expires_at.isoformat(timespec="minutes") if k.expires_at else "-"
            print(f"{k.id}\t{k.name}\tpql_{k.prefix}_…\t{status}\t{','.join(k.scopes)}\t"
                  f"{k.customer_ref or '-'}\t{k.rate_limit_per_minute or '-'}\t{expires}")
        return 0
    info = asyncio.run(admin.revoke_key(settings, args.id))
    print(f"revoked key {info.id} ({info.name})")
    return 0


def _keys_create(settings: Settings, args: argparse.Namespace) -> int:
    from panelql.application.auth import validate_scopes
    from panelql.application.errors import GatewayError

    try:
        scopes = validate_scopes(args.scope or [])
    except GatewayError as exc:
        allowed = ", ".join(exc.extensions.get("allowed", []))
        raise CliError(f"--scope: {exc.message} (allowed: {allowed})", 2) from None
    if args.rate_limit is not None and args.rate_limit < 1:
        raise CliError("--rate-limit: must be at least 1 request per minute", 2)
    raw, info = asyncio.run(admin.create_key(
        settings, name=args.name, scopes=scopes, customer_ref=args.customer,
        rate_limit_per_minute=args.rate_limit, expires_at=admin.parse_expiry(args.expires)))
    if not args.quiet:
        print(f"created key {info.id} ({info.name}) scopes={','.join(info.scopes)}"
              + (f" customer={info.customer_ref}" if info.customer_ref else ""), file=sys.stderr)
        print("this is the only time the key is shown; store it now:", file=sys.stderr)
    print(raw)
    return 0


# -- audit --------------------------------------------------------------------------------------

def cmd_audit(args: argparse.Namespace) -> int:
    settings = _settings(args)

    def emit(row: Any) -> None:
        if args.json:
            print(json.dumps({**row.__dict__, "at": row.at.isoformat()}, default=str), flush=True)
            return
        error = f" {row.error_code}" if row.error_code else ""
        took = f" {row.duration_ms:.0f}ms" if row.duration_ms is not None else ""
        upstream = f" upstream={row.upstream_request_id}" if row.upstream_request_id else ""
        print(f"{row.id}\t{row.at.isoformat(timespec='seconds')}\t{row.actor}\t{row.action}\t"
              f"{row.target or '-'}\t{row.outcome}{error}{took}{upstream}", flush=True)

    asyncio.run(admin.audit_tail(settings, args.lines, follow=args.follow,
                                 interval=args.interval, action=args.action, emit=emit))
    return 0


# -- parser -------------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="panelql", description="One GraphQL API over hosting panels.",
        epilog="Settings come from PANELQL_* variables and the TOML file; see README.md.")
    root.add_argument("--config", help="TOML config file (default: $PANELQL_CONFIG_FILE)")
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", help="address to listen on (default: settings.host)")
    serve.add_argument("--port", type=int, help="port (default: settings.port)")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes (use PostgreSQL + Redis with more than one)")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="run the gateway against simulated panels, with a key")
    demo.add_argument("--port", type=int)
    demo.add_argument("--key-file", default=str(admin.DEMO_KEY_FILE),
                      help="where the demo's admin key is written (default: %(default)s)")
    demo.set_defaults(func=cmd_demo)

    db = sub.add_parser("db", help="database migrations")
    db.add_argument("db_command", choices=["upgrade", "current"])
    db.set_defaults(func=cmd_db)

    _providers_parser(sub)
    _keys_parser(sub)
    _automation_parser(sub)

    schema = sub.add_parser("schema", help="GraphQL schema")
    schema.add_argument("schema_command", choices=["export"])
    schema.add_argument("--output", help="file to write, - for standard output (default: "
                        "panelql/schema/schema.graphql in a checkout, else ./schema.graphql)")
    schema.set_defaults(func=cmd_schema)

    audit = sub.add_parser("audit", help="the audit log of mutations")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    tail = audit_sub.add_parser("tail", help="newest entries, oldest first")
    tail.add_argument("-n", "--lines", type=int, default=20, help="how many (default: 20)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new entries")
    tail.add_argument("--interval", type=float, default=2.0, help="poll seconds with --follow")
    tail.add_argument("--action", help="only this mutation, e.g. suspendServer")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    audit.set_defaults(func=cmd_audit)

    config = sub.add_parser("config", help="configuration")
    config.add_argument("config_command", choices=["check"],
                        help="check: validate the file + environment, print the effective "
                             "settings with secrets redacted")
    config.set_defaults(func=cmd_config)
    return root


def _providers_parser(sub: Any) -> None:
    providers = sub.add_parser("providers", help="provider connections")
    psub = providers.add_subparsers(dest="providers_command", required=True, metavar="COMMAND")
    psub.add_parser("list", help="connections from the config file and the database")
    test = psub.add_parser("test", help="check health, latency and credentials of connections")
    test.add_argument("names", nargs="*", help="only these connections (default: all)")
    test.add_argument("--timeout", type=float, default=15.0, help="seconds per connection")
    add = psub.add_parser(
        "add", help="store a connection in the database (credentials encrypted)",
        description="Needs PANELQL_SECRET_KEY (`panelql keys secret` makes one). Prefer "
                    "--credential-env over --credential: command lines end up in shell history.")
    add.add_argument("name")
    add.add_argument("--kind", required=True, help="provider kind, e.g. catalyst, pterodactyl")
    add.add_argument("--base-url", required=True)
    add.add_argument("--credential", action="append", metavar="KEY=VALUE")
    add.add_argument("--credential-env", action="append", metavar="KEY=ENV_VAR",
                     help="read the credential from an environment variable now")
    add.add_argument("--option", action="append", metavar="KEY=VALUE",
                     help="adapter option; JSON values are parsed (true, 5, [..])")
    add.add_argument("--region")
    add.add_argument("--timeout", type=float, default=25.0, help="upstream timeout seconds")
    add.add_argument("--check", action="store_true", help="save only if check_health passes")
    remove = psub.add_parser("remove", help="delete a stored connection")
    remove.add_argument("name")
    psub.add_parser("rotate-secrets", help="re-encrypt stored credentials with the newest key")
    providers.set_defaults(func=cmd_providers)


def _keys_parser(sub: Any) -> None:
    keys = sub.add_parser("keys", help="API keys and the credential encryption key")
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    create = ksub.add_parser("create", help="create an API key (printed once)")
    create.add_argument("--name", required=True, help="who or what uses it, e.g. whmcs")
    create.add_argument("--scope", action="append", help="repeatable: server.view, admin, …")
    create.add_argument("--customer", help="bind to a customer reference, e.g. whmcs:42")
    create.add_argument("--rate-limit", type=int, help="requests per minute")
    create.add_argument("--expires", help="30d, 12h, 90m or an ISO date")
    create.add_argument("-q", "--quiet", action="store_true", help="print only the key")
    ksub.add_parser("list", help="keys and their status (never the secret)")
    revoke = ksub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id", type=int)
    ksub.add_parser("secret", help="generate a PANELQL_SECRET_KEY for stored credentials")
    keys.set_defaults(func=cmd_keys)


def _automation_parser(sub: Any) -> None:
    from panelql.automation_cli import add_parser

    add_parser(sub)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        if len(exc.problems) == 1:
            _err(f"configuration error: {exc.problems[0]}")
        else:
            _err(f"configuration error ({len(exc.problems)} problems):")
            for problem in exc.problems:
                print(f"  {problem}", file=sys.stderr)
        return 2
    except (SecretKeyError, StoredConnectionError) as exc:
        _err(str(exc))
        return 2
    except DuplicateConnection as exc:
        _err(str(exc))
        return 1
    except CliError as exc:
        _err(str(exc))
        return exc.code
    except OperationalError as exc:
        _err(f"database error: {exc.orig or exc} (is PANELQL_DATABASE_URL right? has "
             "`panelql db upgrade` run?)")
        return 1
    except (OSError, DBAPIError) as exc:
        # Connection refused, unknown host, authentication failed: the server is not there or
        # will not have us. The URL is not repeated; it may hold a password.
        _err(f"cannot reach the database: {_one_line(exc)} (is PANELQL_DATABASE_URL right, and "
             "is the server running?)")
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `panelql … | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
