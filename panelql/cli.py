"""The ``panelql`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from panelql.settings import ConfigError, Settings, load_settings

EXAMPLE_QUERY = """{ servers(first: 100) { edges { node { id name status provider { kind }
      node { name } owner { email } } } } }"""


def _settings(args: argparse.Namespace, **overrides: object) -> Settings:
    return load_settings(getattr(args, "config", None), **overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from panelql.app import create_app

    settings = _settings(args)
    host, port = args.host or settings.host, args.port or settings.port
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level,
                ws="websockets-sansio")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import uvicorn

    from panelql.app import create_app
    from panelql.sim.demo import start_panels
    from panelql.sim.runner import BackgroundServers

    background = BackgroundServers()
    _, entries = start_panels(background)
    settings = _settings(args, providers=[e.model_dump() for e in entries])
    url = f"http://{settings.host}:{args.port or settings.port}/graphql"
    print(f"PanelQL demo: {len(entries)} simulated panels "
          f"({', '.join(e.kind for e in entries)})")
    print(f"GraphiQL: {url}")
    print("Try:\n" + EXAMPLE_QUERY)
    print(f"curl -s {url} -H 'content-type: application/json' "
          "-d '{\"query\":\"{ providers { name kind health { ok } } }\"}'")
    try:
        uvicorn.run(create_app(settings), host=settings.host, port=args.port or settings.port,
                    log_level="warning", ws="websockets-sansio")
    finally:
        background.stop()
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from panelql.db.migrate import current_revision, upgrade

    settings = _settings(args)
    if args.db_command == "upgrade":
        asyncio.run(upgrade(settings.database_url))
        print("database is at the latest revision")
    else:
        print(asyncio.run(current_revision(settings.database_url)) or "(empty database)")
    return 0


def cmd_providers(args: argparse.Namespace) -> int:
    settings = _settings(args)
    for connection in settings.connections():
        print(f"{connection.name}\t{connection.kind}\t{connection.base_url}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from panelql.schema.root import SDL_PATH, export_sdl

    target = Path(args.output) if args.output else SDL_PATH
    target.write_text(export_sdl())
    print(f"wrote {target}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="panelql", description="One GraphQL API over hosting panels.")
    root.add_argument("--config", help="TOML config file (default: $PANELQL_CONFIG_FILE)")
    sub = root.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="run the gateway against simulated panels")
    demo.add_argument("--port", type=int)
    demo.set_defaults(func=cmd_demo)

    db = sub.add_parser("db", help="database migrations")
    db.add_argument("db_command", choices=["upgrade", "current"])
    db.set_defaults(func=cmd_db)

    providers = sub.add_parser("providers", help="provider connections")
    providers.add_argument("providers_command", choices=["list"])
    providers.set_defaults(func=cmd_providers)

    schema = sub.add_parser("schema", help="GraphQL schema")
    schema.add_argument("schema_command", choices=["export"])
    schema.add_argument("--output", help="file to write (default: panelql/schema/schema.graphql)")
    schema.set_defaults(func=cmd_schema)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"panelql: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
