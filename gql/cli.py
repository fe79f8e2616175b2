"""The `export-gql` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from gql.config.errors import StartupError, load_settings
from gql.config.settings import Settings

SCHEMA_FILE = Path("schema.graphql")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="export-gql", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API (uvicorn)")
    serve.add_argument("--host", help="default: HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, help="default: PORT or 8000")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="API processes sharing the port (more than one needs PostgreSQL)",
    )

    worker = commands.add_parser(
        "worker", help="run the local worker: a RunPod-compatible endpoint doing the exports"
    )
    worker.add_argument("--host", default="127.0.0.1")
    worker.add_argument("--port", type=int, default=8001)
    worker.add_argument(
        "--concurrency", type=int, help="default: LOCAL_WORKER_CONCURRENCY or CPUs / 2"
    )

    token = commands.add_parser("token", help="print a bearer token for a user")
    token.add_argument("user")
    token.add_argument("--days", type=int, default=30)

    seed = commands.add_parser("seed-demo", help="store a demo project and game for a user")
    seed.add_argument("--user", default="local")
    seed.add_argument("--seconds", type=float, help="length of the demo videos (default: 30)")

    doctor = commands.add_parser(
        "doctor", help="check the deployment: database, RunPod, storage, webhooks, backend, auth"
    )
    doctor.add_argument("--json", action="store_true", help="print the results as JSON")

    webhooks = commands.add_parser(
        "webhooks", help="the outbound webhooks' events: list them, replay abandoned ones"
    )
    actions = webhooks.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the newest events, one JSON object a line")
    listing.add_argument(
        "--state", choices=["all", "pending", "delivered", "abandoned"], default="all"
    )
    listing.add_argument("--limit", type=int, default=50)
    replay = actions.add_parser(
        "replay", help="send events again (same webhook-id); re-enables a receiver gone 410"
    )
    chosen = replay.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--id", dest="ids", action="append", help="a webhook id (repeatable)")
    chosen.add_argument("--abandoned", action="store_true", help="every abandoned event")

    export = commands.add_parser("export-schema", help="write the schema's SDL")
    export.add_argument("--output", type=Path, default=SCHEMA_FILE)
    export.add_argument("--check", action="store_true", help="fail if the file differs")

    args = parser.parse_args(argv)
    handler = {
        "serve": _serve,
        "worker": _worker,
        "token": _token,
        "seed-demo": _seed_demo,
        "doctor": _doctor,
        "webhooks": _webhooks,
        "export-schema": _export_schema,
    }[args.command]
    try:
        return handler(args)
    except StartupError as error:
        print(error, file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    # Settings first: a mistake is reported before the app's slow imports.
    overrides = {key: value for key, value in (("host", args.host), ("port", args.port)) if value}
    settings = load_settings(Settings, **overrides)

    from gql.observability.logs import configure_logging
    from gql.serve import serve

    configure_logging(log_format=settings.log_format)
    serve(settings, workers=args.workers)
    return 0


def _worker(args: argparse.Namespace) -> int:
    # Same storage and API key settings as the API, so `serve` can point at it with
    # RUNPOD_ENDPOINT_URL=http://HOST:PORT/v2/local.
    settings = load_settings(Settings)

    from gql.observability.logs import configure_logging
    from worker.local_server import serve_local_endpoint

    configure_logging(log_format=settings.log_format)
    serve_local_endpoint(
        args.host,
        args.port,
        storage_config=settings.storage,
        concurrency=args.concurrency or settings.local_worker_concurrency,
        api_key=settings.runpod_api_key,
        execution_timeout_s=settings.local_worker_timeout_s,
        handler=settings.local_worker_handler,
    )
    return 0


def _token(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from gql.auth.tokens import Authenticator, AuthError

    settings = load_settings(Settings)
    try:
        print(
            Authenticator(settings.auth_jwt_secret).issue(args.user, ttl=timedelta(days=args.days))
        )
    except AuthError as error:
        print(f"export-gql token: {error}", file=sys.stderr)
        return 2
    return 0


def _seed_demo(args: argparse.Namespace) -> int:
    settings = load_settings(Settings)
    from gql.demo.seed import DEMO_SECONDS, seed_demo

    seconds = DEMO_SECONDS if args.seconds is None else args.seconds
    if not 1 <= seconds <= 600:
        raise StartupError("--seconds must be between 1 and 600")
    _wait_for_database(settings)
    print(json.dumps(asyncio.run(seed_demo(settings, args.user, seconds=seconds))))
    return 0


def _doctor(args: argparse.Namespace) -> int:
    settings = load_settings(Settings)

    from gql.doctor import run_checks
    from gql.doctor.report import render_json, render_table

    # The report states every cause; the clients' own log lines would only repeat them.
    logging.getLogger().addHandler(logging.NullHandler())
    results = asyncio.run(run_checks(settings))
    print(render_json(results) if args.json else render_table(results))
    return 1 if any(result.failed for result in results) else 0


def _webhooks(args: argparse.Namespace) -> int:
    settings = load_settings(Settings)
    from gql.webhooks.admin import list_events, replay

    if args.action == "list":
        for event in asyncio.run(list_events(settings, args.state, max(1, args.limit))):
            print(json.dumps(event.summary()))
        return 0
    replayed = asyncio.run(replay(settings, args.ids or []))
    if replayed.enabled_again:
        print(f"the receiver is enabled again (it was disabled: {replayed.enabled_again})")
    print(f"{len(replayed.webhook_ids)} event(s) to be sent again")
    for webhook_id in replayed.webhook_ids:
        print(webhook_id)
    return 0


def _wait_for_database(settings: Settings) -> None:
    from gql.startup.database_wait import wait_for_database

    asyncio.run(wait_for_database(settings.database_url, settings.database_connect_timeout_s))


def _export_schema(args: argparse.Namespace) -> int:
    from gql.graphql_schema import build_schema

    sdl = build_schema().as_str() + "\n"
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != sdl:
            print(f"{args.output} is out of date: run 'export-gql export-schema'", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(sdl)
    return 0


if __name__ == "__main__":
    sys.exit(main())
