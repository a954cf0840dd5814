"""`pyjit demo`: the gateway on embedded defaults, a demo program, a short synthetic replay."""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from rich.console import Console

from pyjit.clock import SystemClock, SystemIds
from pyjit.config import DEMO_USERNAME, Config, client_config, demo_password
from pyjit.profile import Profile

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
REAL_FILE = "../shared/data/card_transactions_multicard_sample.csv"


def run_demo(rows: int, seed: int) -> int:
    console = Console()
    env = dict(os.environ)
    env.setdefault("PYJIT_GATEWAY_USERNAME", DEMO_USERNAME)
    env.setdefault("PYJIT_GATEWAY_PASSWORD", demo_password(SystemIds()))
    env.setdefault("PYJIT_HTTP_ADDR", f"127.0.0.1:{_free_port(8080)}")
    # gRPC too: a machine running anything on 50051 must not stop the demo.
    env.setdefault("PYJIT_GRPC_ADDR", f"127.0.0.1:{_free_port(50051)}")
    config = client_config(env)
    console.print(f"starting the gateway on {config.base_url} (data in {config.home}) ...")
    config.home.mkdir(parents=True, exist_ok=True)
    with (config.home / "demo-server.log").open("ab") as server_log:
        server = subprocess.Popen(
            [sys.executable, "-m", "pyjit", "serve", "--demo"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=server_log,
        )
    try:
        if not _wait_ready(config.base_url, server):
            console.print(
                f"[red]the gateway did not become ready; see {config.home}/demo-server.log[/red]"
            )
            return 1
        code = _replay_sample(config, rows, seed, console)
        _explain(console)
        return code
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.kill()


def _replay_sample(config: Config, rows: int, seed: int, console: Console) -> int:
    from pyjit.cli import run_replay
    from pyjit.transactions import synthetic_transactions

    transactions = synthetic_transactions(rows, seed)
    source = f"pyjit demo sample rows={rows} seed={seed}".encode()
    args = argparse.Namespace(
        rate=None,
        concurrency=16,
        seed=seed,
        quiet=False,
        json=None,
        answers=None,
        file="built-in synthetic sample",
    )
    console.print(
        f"replaying {rows} synthetic card transactions (seed {seed}) as JIT messages: each "
        "authorization, then for an approved one its clearing or reversal; refunds alone ...",
        soft_wrap=True,
    )
    return run_replay(args, config, config.base_url, source, transactions, Profile(), console)


def _explain(console: Console) -> None:
    # soft_wrap: a command cut in two by the terminal's width cannot be pasted back. No
    # --url: the demo's gateway is gone, and replay finds `serve` by the same variables.
    console.print(
        "\nTo replay a real file, start `pyjit serve` with PYJIT_GATEWAY_USERNAME and "
        "PYJIT_GATEWAY_PASSWORD set (see README.md), then, with the same variables:\n"
        f"  .venv/bin/pyjit replay {REAL_FILE} [--rate 1000]",
        soft_wrap=True,
    )


def _free_port(preferred: int) -> int:
    """`preferred` if nothing listens there, else any free port."""
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            bound: int = probe.getsockname()[1]
            return bound
    raise OSError("no free TCP port")


def _wait_ready(base_url: str, server: subprocess.Popen[bytes]) -> bool:
    clock = SystemClock()
    deadline_ns = clock.monotonic_ns() + int(READY_TIMEOUT_S * 1e9)
    while clock.monotonic_ns() < deadline_ns:
        if server.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{base_url}/ready", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False
