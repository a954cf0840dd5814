"""The HTTP gateway, durable in PostgreSQL, under a replay of the real multicard file.

Three measurements, each against a `pyjit serve` process whose journal lives in a fresh
database on the machine's PostgreSQL (127.0.0.1:5432):

1. full speed: `pyjit replay` with a bounded number of requests in flight (decisions/s, p50,
   p99);
2. a fixed 1,000 messages/s on another fresh database, latency measured from each message's
   due time (no coordinated omission);
3. recovery: the first run's gateway is killed (SIGKILL), its snapshots deleted, and a new
   process replays the whole journal at start; /ready reports the rate;
4. the baseline (bench/baseline.py, SELECT ... FOR UPDATE per swipe) on its own fresh
   database under the same full-speed replay (`pyjit replay` loads the same program into
   it), and our throughput and p99 as ratios against its.

Usage: .venv/bin/python bench/gateway.py [--file CSV] [--rate 1000] [--concurrency 64]
Reports are printed and written to bench/reports/gateway.json.
"""

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FILE = REPO.parent / "shared" / "data" / "card_transactions_multicard_sample.csv"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
USERNAME = "bench-processor"
PASSWORD = "Bench-Secret-Password-1!"


def psql(sql: str) -> None:
    subprocess.run(["psql", ADMIN_URL, "-qc", sql], check=True, capture_output=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def environment(database: str, port: int, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": ADMIN_URL.rsplit("/", 1)[0] + f"/{database}",
        "PYJIT_HTTP_ADDR": f"127.0.0.1:{port}",
        # The process serves gRPC too; never the default port another run may hold.
        "PYJIT_GRPC_ADDR": f"127.0.0.1:{free_port()}",
        "PYJIT_HOME": str(home),
        "PYJIT_GATEWAY_USERNAME": USERNAME,
        "PYJIT_GATEWAY_PASSWORD": PASSWORD,
        "PYTHONPATH": str(REPO),
    }


def ready(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
            payload: dict[str, Any] = json.loads(response.read())
            return payload
    except OSError:
        return None


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "pyjit", "serve"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    for _ in range(600):
        if ready(port) is not None:
            return server
        if server.poll() is not None:
            raise SystemExit(f"the gateway exited; see {log}")
        time.sleep(0.1)
    server.kill()
    raise SystemExit("the gateway did not become ready")


def replay(env: dict[str, str], file: Path, report: Path, *extra: str) -> dict[str, Any]:
    # A failed replay writes no report: never read the previous run's instead.
    report.unlink(missing_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pyjit",
            "replay",
            str(file),
            "--quiet",
            "--json",
            str(report),
            "--url",
            f"http://{env['PYJIT_HTTP_ADDR']}",
            *extra,
        ],
        env=env,
        cwd=REPO,
        check=False,
        stdout=subprocess.DEVNULL,
    )
    result: dict[str, Any] = json.loads(report.read_text())
    return result


def run_once(
    name: str, file: Path, reports: Path, extra: list[str], keep: bool
) -> tuple[dict[str, Any], dict[str, str], subprocess.Popen[bytes], str]:
    database = f"pyjit_bench_{secrets.token_hex(4)}"
    psql(f'CREATE DATABASE "{database}"')
    port = free_port()
    env = environment(database, port, reports)
    server = start_server(env, port, reports / f"{name}-server.log")
    report = replay(env, file, reports / f"{name}.json", *extra)
    if not keep:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
        psql(f'DROP DATABASE "{database}" WITH (FORCE)')
    return report, env, server, database


def run_baseline(file: Path, reports: Path, concurrency: int) -> dict[str, Any]:
    """The full-speed replay against the baseline gateway, on a fresh database of its own."""
    database = f"pyjit_baseline_{secrets.token_hex(4)}"
    psql(f'CREATE DATABASE "{database}"')
    port = free_port()
    env = environment(database, port, reports)
    command = [sys.executable, str(REPO / "bench" / "baseline.py"), "--dsn"]
    command += [env["DATABASE_URL"], "--addr", env["PYJIT_HTTP_ADDR"]]
    command += ["--username", USERNAME, "--password", PASSWORD]
    with (reports / "baseline-server.log").open("ab") as stderr:
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        for _ in range(300):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.1)
        # The baseline has no reconciliation endpoint: its report says "not available".
        return replay(env, file, reports / "baseline.json", "--concurrency", str(concurrency))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
        psql(f'DROP DATABASE "{database}" WITH (FORCE)')


def ratios(ours: dict[str, Any], baseline: dict[str, Any]) -> str:
    throughput = ours["throughput_per_second"] / max(baseline["throughput_per_second"], 1e-9)
    p99 = ours["latency_ms"]["p99"] / max(baseline["latency_ms"]["p99"], 1e-9)
    return (
        f"vs baseline  throughput {throughput:.2f}x (target >= 10x)  "
        f"p99 {p99:.3f}x (target <= 0.2x)"
    )


def measure_recovery(
    env: dict[str, str], server: subprocess.Popen[bytes], database: str, reports: Path
) -> dict[str, Any]:
    server.send_signal(signal.SIGKILL)
    server.wait()
    subprocess.run(["psql", env["DATABASE_URL"], "-qc", "DELETE FROM snapshots"], check=True)
    port = int(env["PYJIT_HTTP_ADDR"].rsplit(":", 1)[1])
    started = time.monotonic()
    restarted = start_server(env, port, reports / "recovery-server.log")
    state = ready(port)
    while state is None or not state["checks"]["recovery"]["ok"]:
        time.sleep(0.05)
        state = ready(port)
    wall_s = time.monotonic() - started
    restarted.send_signal(signal.SIGTERM)
    restarted.wait(60)
    psql(f'DROP DATABASE "{database}" WITH (FORCE)')
    recovery = dict(state["checks"]["recovery"])
    recovery["process_start_to_ready_s"] = round(wall_s, 2)
    return recovery


def reconciled(report: dict[str, Any]) -> str:
    reconciliation = report["reconciliation"]
    if not reconciliation["available"]:
        # The baseline has no read models to compare; "False" would read as a failure.
        return "n/a"
    return str(reconciliation["ok"])


def summary(name: str, report: dict[str, Any]) -> str:
    latency = report["latency_ms"]
    return (
        f"{name:<12} messages {report['messages_sent']:>6}  "
        f"throughput {report['throughput_per_second']:>8.1f}/s  "
        f"p50 {latency['p50']:.3f} ms  p90 {latency['p90']:.3f} ms  "
        f"p99 {latency['p99']:.3f} ms  max {latency['max']:.3f} ms  "
        f"errors {report['errors']}  reconciled {reconciled(report)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    if not args.file.exists():
        raise SystemExit(f"{args.file} is absent")
    reports = REPO / "bench" / "reports"
    reports.mkdir(parents=True, exist_ok=True)

    full, env, server, database = run_once(
        "full-speed", args.file, reports, ["--concurrency", str(args.concurrency)], keep=True
    )
    print(summary("full speed", full), flush=True)
    recovery = measure_recovery(env, server, database, reports)
    print(f"recovery     {recovery}", flush=True)
    rated, *_ = run_once(
        "fixed-rate",
        args.file,
        reports,
        ["--rate", str(args.rate), "--concurrency", "256"],
        keep=False,
    )
    print(summary(f"{args.rate:.0f}/s", rated), flush=True)
    baseline = run_baseline(args.file, reports, args.concurrency)
    print(summary("baseline", baseline), flush=True)
    print(ratios(full, baseline), flush=True)
    result = {"full_speed": full, "fixed_rate": rated, "recovery": recovery}
    result["baseline"] = baseline
    (reports / "gateway.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
