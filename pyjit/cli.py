"""The `pyjit` command: serve, migrate, load, replay, sim, demo."""

import argparse
import asyncio
import math
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson
from rich.console import Console

from pyjit import logs
from pyjit.clock import SystemClock, SystemIds
from pyjit.config import Config, ConfigError, client_config, load_config

T = TypeVar("T")

# What `pyjit serve --role` may run: everything in one process, a decider (gRPC only), a
# stateless edge in front of decider shards (pyjit/server.py ROLES), the portal alone, or
# the webhook consumers alone (reaching the decider through the edge at PYJIT_HTTP_ADDR).
SERVE_ROLES = ("all", "decider", "edge", "portal", "worker")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if getattr(args, "passes_through", False):
        args.rest = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        result: int = args.handler(args)
    except ConfigError as error:
        print("pyjit: configuration problems:", file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    return result


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed: it halves the event loop's cost per request."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyjit", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the JIT gateway")
    serve.add_argument("--config", help="TOML configuration file (or PYJIT_CONFIG)")
    serve.add_argument("--demo", action="store_true", help="generate credentials if unset")
    serve.add_argument(
        "--role", choices=SERVE_ROLES, default="all", help="what this process serves"
    )
    serve.add_argument(
        "--standby",
        action="store_true",
        help="follow the journal and take over when the shard's primary decider dies",
    )
    serve.set_defaults(handler=_serve)

    migrate = commands.add_parser("migrate", help="apply the journal's schema migrations")
    migrate.add_argument("--config", help="TOML configuration file (or PYJIT_CONFIG)")
    migrate.set_defaults(handler=_migrate)

    load = commands.add_parser("load", help="upsert a program file on the running gateway")
    load.add_argument("file", type=Path, help="program file (docs/program-file.md)")
    load.add_argument("--url", help="gateway URL (default from PYJIT_HTTP_ADDR)")
    load.set_defaults(handler=_load)

    replay = commands.add_parser("replay", help="replay a card transaction file as JIT traffic")
    replay.add_argument("file", type=Path, help="CSV in either ../shared/data format")
    _replay_options(replay)
    replay.set_defaults(handler=_replay)

    sim = commands.add_parser(
        "sim",
        help="serve the Marqeta processor simulator (test and demo tool)",
        add_help=False,
    )
    # Everything after `sim` is the simulator's own command line, --help included.
    sim.set_defaults(handler=_sim, passes_through=True)

    from portal.accounts_cli import add_parser as add_user_parser

    add_user_parser(commands)

    demo = commands.add_parser("demo", help="serve on embedded defaults and replay a sample")
    demo.add_argument(
        "--rows",
        type=_within(int, 1, 1_000_000),
        default=400,
        help="synthetic transactions to replay",
    )
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(handler=_demo)
    return parser


def _replay_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="gateway URL (default from PYJIT_HTTP_ADDR)")
    parser.add_argument(
        "--rate",
        type=_within(float, 0.01, 1_000_000),
        help="messages per second, 0.01 to 1,000,000 (default: full speed)",
    )
    parser.add_argument(
        "--concurrency",
        type=_within(int, 1, 10_000),
        default=64,
        help="requests in flight, 1 to 10,000 (more only exhausts the client's sockets)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seeds the clearing mix")
    parser.add_argument("--profile", type=Path, help="JSON profile: balances and controls")
    parser.add_argument("--json", type=Path, help="also write the report here as JSON")
    parser.add_argument("--answers", type=Path, help="write every answer received (JSONL)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _within(kind: Callable[[str], float], low: float, high: float) -> Callable[[str], Any]:
    """An argparse type that accepts only finite numbers from `low` to `high`."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (math.isfinite(value) and low <= value <= high):
            bounds = f"{_shown(low)} to {_shown(high)}"
            raise argparse.ArgumentTypeError(f"must be from {bounds}: {text!r}")
        return value

    return parse


def _shown(bound: float) -> str:
    return f"{bound:,.0f}" if float(bound).is_integer() else f"{bound:g}"


def _serve(args: argparse.Namespace) -> int:
    config = load_config(args.config, demo=args.demo, ids=SystemIds())
    logs.configure(config.log_level, config.sentry_dsn)
    if args.demo:
        print(
            f"demo credentials: PYJIT_GATEWAY_USERNAME={config.gateway_username} "
            f"PYJIT_GATEWAY_PASSWORD='{config.gateway_password}'",
            flush=True,
        )
    from pyjit.database import DatabaseUnavailable
    from pyjit.lease import LeaseTaken
    from pyjit.server import serve

    try:
        run_async(serve(config, SystemClock(), role=args.role, standby=args.standby))
    except (LeaseTaken, DatabaseUnavailable) as error:
        print(f"pyjit serve: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        # Most often the address is in use; say which address rather than show a traceback.
        print(f"pyjit serve: cannot serve on {config.http_addr}: {error}", file=sys.stderr)
        return 1
    return 0


def _migrate(args: argparse.Namespace) -> int:
    config = client_config(config_file=args.config)
    logs.configure(config.log_level)
    from pyjit.database import DatabaseUnavailable, open_database
    from pyjit.server import run_migrations

    database = open_database(config.database_url, config.home)
    try:
        applied = run_async(run_migrations(database.url))
    except DatabaseUnavailable as error:
        print(f"pyjit migrate: {error}", file=sys.stderr)
        return 1
    finally:
        database.release()
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "none (up to date)"
    print(f"migrations applied: {names}")
    return 0


def _client_settings(url: str | None) -> tuple[Config, str]:
    config = client_config()
    if not config.gateway_username or not config.gateway_password:
        raise ConfigError(
            ["set PYJIT_GATEWAY_USERNAME and PYJIT_GATEWAY_PASSWORD to the gateway's credentials"]
        )
    return config, url or config.base_url


def _load(args: argparse.Namespace) -> int:
    from pyjit.gateway_client import GatewayClient
    from pyjit.program import ProgramFileError, load_program, read_program_file

    config, url = _client_settings(args.url)
    console = Console()
    try:
        body = read_program_file(args.file)
    except ProgramFileError as error:
        console.print(f"[red]{error}[/red]")
        return 1

    async def run() -> bool:
        credentials = (config.gateway_username, config.gateway_password)
        async with GatewayClient(url, credentials, config.admin_credentials) as client:
            return await load_program(client, body, console)

    return 0 if run_async(run()) else 1


def _replay(args: argparse.Namespace) -> int:
    from pyjit.profile import ProfileError, load_profile
    from pyjit.transactions import TransactionFileError, read_transactions

    config, url = _client_settings(args.url)
    console = Console()
    try:
        _check_outputs(args)
        source = args.file.read_bytes()
        transactions = read_transactions(args.file)
        profile = load_profile(args.profile)
    except (OSError, TransactionFileError, ProfileError) as error:
        console.print(f"[red]{error}[/red]")
        return 1
    return run_replay(args, config, url, source, transactions, profile, console)


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse before sending anything an output file that could not be written after."""
    for option, path in (("--json", args.json), ("--answers", args.answers)):
        if path is not None and not (path.parent.is_dir() and os.access(path.parent, os.W_OK)):
            raise OSError(f"{option} {path}: {path.parent} is not a writable directory")


def run_replay(
    args: argparse.Namespace,
    config: Config,
    url: str,
    source: bytes,
    transactions: Any,
    profile: Any,
    console: Console,
) -> int:
    """Replay, print the report, write the optional files; 0 when everything reconciles."""
    from pyjit.gateway_client import GatewayError
    from pyjit.replay import ReplayOptions, replay_transactions
    from pyjit.report import render

    options = ReplayOptions(
        url=url,
        credentials=(config.gateway_username, config.gateway_password),
        admin_credentials=config.admin_credentials,
        rate=args.rate,
        concurrency=args.concurrency,
        seed=args.seed,
        profile=profile,
        show_progress=not args.quiet,
    )
    try:
        report, results = run_async(
            replay_transactions(source, transactions, options, SystemClock(), console)
        )
    except GatewayError as error:
        console.print(f"[red]the gateway refused the replay's program: {error}[/red]")
        return 1
    except OSError as error:
        console.print(f"[red]gateway unreachable at {url}: {error}[/red]")
        return 1
    report["file"] = str(getattr(args, "file", "built-in sample"))
    render(report, console)
    if report["stopped"]:
        console.print(
            f"[red]replay stopped: the gateway at {url} went away: {report['stopped']}[/red]"
        )
    if args.json:
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    if args.answers:
        with args.answers.open("wb") as handle:
            for token, (status, body) in results.answers.items():
                line = {"token": token, "status": status, "body": body.decode()}
                handle.write(orjson.dumps(line) + b"\n")
    return 0 if report["ok"] else 1


def _sim(args: argparse.Namespace) -> int:
    from services.simulator import main as simulator_main

    return simulator_main(args.rest)


def _demo(args: argparse.Namespace) -> int:
    from pyjit.demo import run_demo

    return run_demo(args.rows, args.seed)
