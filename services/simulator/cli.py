"""`python -m services.simulator --addr 127.0.0.1:8090`: serve the simulator."""

import argparse
import os
from collections.abc import Sequence

from aiohttp import web

from services.simulator.app import create_app
from services.simulator.clock import TokenSource
from services.simulator.delivery import DeliveryPolicy
from services.simulator.state import SimulatorConfig


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyjit sim", description="Serve the Marqeta processor simulator (test and demo tool)."
    )
    parser.add_argument("--addr", type=_address, default=("127.0.0.1", 8090), help="HOST:PORT")
    parser.add_argument(
        "--application-token",
        default=os.environ.get("PYJIT_SIM_APPLICATION_TOKEN", "sim-application"),
        help="the Basic auth username clients must send",
    )
    parser.add_argument(
        "--admin-access-token",
        default=os.environ.get("PYJIT_SIM_ADMIN_ACCESS_TOKEN", "sim-admin-access"),
        help="the Basic auth password clients must send",
    )
    parser.add_argument("--seed", default=None, help="make generated tokens repeatable")
    parser.add_argument("--kyc-required", action="store_true", help="new holders start UNVERIFIED")
    parser.add_argument(
        "--webhook-backoff-scale",
        type=float,
        default=1.0,
        help="multiply the webhook retry waits (4 s, 16 s, ...) by this",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` and serve until interrupted."""
    options = parser().parse_args(argv)
    host, port = options.addr
    config = SimulatorConfig(
        application_token=options.application_token,
        admin_access_token=options.admin_access_token,
        kyc_required=options.kyc_required,
        delivery=DeliveryPolicy(backoff_scale=options.webhook_backoff_scale),
    )
    app = create_app(config, tokens=TokenSource(options.seed))
    web.run_app(app, host=host, port=port, print=None)
    return 0
