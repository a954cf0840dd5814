"""The benchmark suite: every measurement of bench/ in one run, into one report.

1. engine micro-benchmarks: the Rust `engine_bench` binary (parse, decide, entry to JSON,
   recovery) and bench/engine_py.py (one decision through the Python binding);
2. HTTP JIT load on a `pyjit serve` process (journal in a fresh database on the machine's
   PostgreSQL) at fixed rates of 1,000/s and 3,000/s, latency measured from each message's
   due time so a slow gateway cannot hide its queue (no coordinated omission), and at
   saturation (a bounded number of requests in flight, latency from each send);
3. gRPC unary and streaming, from bench/grpc.py when it exists (see `grpc_results`);
4. recovery: the saturation run's gateway is killed (SIGKILL), its snapshots deleted, and a
   new process replays the whole journal; /ready reports the rate;
5. the baseline (bench/baseline.py: SELECT ... FOR UPDATE per swipe) under the same loads in
   the same run, and our throughput and p99 as ratios against it.

The load generator is `pyjit replay`'s (pyjit/replay.py), run in this process so its
HdrHistogram gives every percentile, p99.9 included.
"""

import asyncio
import contextlib
import importlib.util
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram
from rich.console import Console

from bench import gateway as gateway_bench
from pyjit.clock import SystemClock
from pyjit.profile import Profile
from pyjit.replay import LATENCY_MAX_US, ReplayOptions, replay_transactions
from pyjit.transactions import CardTransaction, read_transactions, synthetic_transactions

REPO = Path(__file__).resolve().parents[1]
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
# The load generator records at most this latency: a figure equal to it means "or more".
LATENCY_CLIP_MS = LATENCY_MAX_US / 1000
# A fixed-rate run that delivered less than this share of its rate fell behind it.
KEPT_UP_SHARE = 0.95


@dataclass(frozen=True)
class Scale:
    """How much of each measurement to run."""

    name: str
    engine_decisions: int
    # Transactions replayed per HTTP run (None: the whole file); each makes ~2 messages.
    fixed_rate_rows: int | None
    saturation_rows: int | None
    rates: tuple[float, ...] = (1000.0, 3000.0)
    concurrency: int = 64
    synthetic_rows: int = 20_000


FULL = Scale("full", 200_000, 15_000, None)
# The test command's version: the same steps and checks on a few hundred messages.
FAST = Scale("fast", 2_000, 150, 300, synthetic_rows=300)


def percentiles_ms(histogram: HdrHistogram) -> dict[str, float]:
    """p50..p99.9 and max of a microsecond histogram, in milliseconds."""
    found = {f"p{q:g}": histogram.get_value_at_percentile(q) / 1000 for q in PERCENTILES}
    found["max"] = histogram.get_max_value() / 1000
    return found


def latency_curve(histogram: HdrHistogram) -> list[tuple[float, float]]:
    """(percentile, latency in ms) points for the percentile plot."""
    points = []
    for q in (0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100):
        points.append((float(q), histogram.get_value_at_percentile(q) / 1000))
    return points


def transactions_for(file: Path | None, scale: Scale) -> tuple[bytes, list[CardTransaction]]:
    """The real file when present (and the scale is full), else a synthetic sample."""
    if file is not None and file.exists() and scale is FULL:
        return file.read_bytes(), read_transactions(file)
    rows = scale.synthetic_rows
    return f"bench synthetic rows={rows}".encode(), synthetic_transactions(rows, seed=11)


def replay_load(
    url: str,
    source: bytes,
    transactions: list[CardTransaction],
    rate: float | None,
    concurrency: int,
) -> dict[str, Any]:
    """One replay against a gateway at `url`: the replay's report plus p99.9 and the curve."""
    options = ReplayOptions(
        url=url,
        credentials=(gateway_bench.USERNAME, gateway_bench.PASSWORD),
        admin_credentials=(gateway_bench.USERNAME, gateway_bench.PASSWORD),
        rate=rate,
        concurrency=concurrency,
        seed=1,
        profile=Profile(),
        show_progress=False,
    )
    console = Console(quiet=True)
    report, results = asyncio.run(
        replay_transactions(source, transactions, options, SystemClock(), console)
    )
    histogram = results.latency_us
    latency = percentiles_ms(histogram)
    throughput = report["throughput_per_second"]
    return {
        "rate_target_per_second": rate,
        "concurrency": concurrency,
        "transactions": len(transactions),
        "messages_sent": report["messages_sent"],
        "approved": report["approved"],
        "declined": report["declined"],
        "errors": report["errors"],
        "statuses": report["statuses"],
        "seconds": report["seconds"],
        "throughput_per_second": report["throughput_per_second"],
        "latency_ms": latency,
        "latency_clipped": latency["max"] >= LATENCY_CLIP_MS,
        "kept_up": rate is None or throughput >= KEPT_UP_SHARE * rate,
        "latency_count": histogram.get_total_count(),
        "curve_ms": latency_curve(histogram),
        "reconciled": bool(report["reconciliation"].get("ok")),
        "reconciliation_available": bool(report["reconciliation"]["available"]),
    }


@contextlib.contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    database = f"pyjit_{kind}_{secrets.token_hex(4)}"
    gateway_bench.psql(f'CREATE DATABASE "{database}"')
    try:
        yield database
    finally:
        gateway_bench.psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def ours(database: str, logs: Path, name: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A `pyjit serve` on `database`; yields its URL and process (stopped on exit)."""
    port = gateway_bench.free_port()
    env = gateway_bench.environment(database, port, logs)
    # Never the default gRPC port: another gateway on this machine may hold it.
    env["PYJIT_GRPC_ADDR"] = f"127.0.0.1:{gateway_bench.free_port()}"
    server = gateway_bench.start_server(env, port, logs / f"{name}-server.log")
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        stop(server)


@contextlib.contextmanager
def baseline(database: str, logs: Path, name: str) -> Iterator[str]:
    """bench/baseline.py on `database`; yields its URL."""
    port = gateway_bench.free_port()
    env = gateway_bench.environment(database, port, logs)
    command = [sys.executable, str(REPO / "bench" / "baseline.py"), "--dsn"]
    command += [env["DATABASE_URL"], "--addr", env["PYJIT_HTTP_ADDR"]]
    command += ["--username", gateway_bench.USERNAME, "--password", gateway_bench.PASSWORD]
    with (logs / f"{name}-server.log").open("ab") as stderr:
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        _wait_listening(port, server)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(server)


def _wait_listening(port: int, server: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
            return
        if server.poll() is not None:
            raise RuntimeError("the baseline gateway exited at start")
        time.sleep(0.1)
    raise RuntimeError("the baseline gateway did not start listening")


def measure_recovery(database: str, logs: Path, journal_entries: int) -> dict[str, Any]:
    """Restart on `database` without snapshots: the whole journal is replayed."""
    url = gateway_bench.ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
    subprocess.run(["psql", url, "-qc", "DELETE FROM snapshots"], check=True, capture_output=True)
    started = time.monotonic()
    with ours(database, logs, "recovery") as (base_url, _server):
        port = int(base_url.rsplit(":", 1)[1])
        state = gateway_bench.ready(port)
        while state is None or not state["checks"]["recovery"]["ok"]:
            time.sleep(0.05)
            state = gateway_bench.ready(port)
        wall_s = time.monotonic() - started
    recovery = dict(state["checks"]["recovery"])
    recovery["journal_entries"] = journal_entries
    recovery["process_start_to_ready_s"] = round(wall_s, 3)
    return recovery


def journal_count(database: str) -> int:
    url = gateway_bench.ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
    done = subprocess.run(
        ["psql", url, "-qtAc", "SELECT count(*) FROM journal"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout.strip())


_ENGINE_LINE = re.compile(
    r"^(?P<name>.+?)\s+n=(?P<n>\d+)\s+p50=\s*(?P<p50>[\d.]+)us\s+p99=\s*(?P<p99>[\d.]+)us\s+"
    r"p99\.9=\s*(?P<p999>[\d.]+)us\s+max=\s*(?P<max>[\d.]+)us\s+(?P<rate>[\d.]+)/s$"
)
_RECOVERY_LINE = re.compile(
    r"^recovery: (?P<entries>\d+) entries in (?P<seconds>[\d.]+)s = (?P<rate>\d+) entries/s"
    r" \(digest (?P<digest>equal)\)$"
)
_BINDING_LINE = re.compile(
    r"^(?P<name>.+?)\s+p50=\s*(?P<p50>[\d.]+)us\s+p99=\s*(?P<p99>[\d.]+)us\s+"
    r"p99\.9=\s*(?P<p999>[\d.]+)us\s+(?P<rate>[\d.]+)/s$"
)


def parse_engine_bench(output: str) -> dict[str, Any]:
    """The Rust bench's printed lines as numbers (microseconds, per second)."""
    stages, recovery = {}, None
    for line in output.splitlines():
        if found := _ENGINE_LINE.match(line.strip()):
            stages[found["name"].strip()] = {
                "n": int(found["n"]),
                "p50_us": float(found["p50"]),
                "p99_us": float(found["p99"]),
                "p99_9_us": float(found["p999"]),
                "max_us": float(found["max"]),
                "per_second": float(found["rate"]),
            }
        elif found := _RECOVERY_LINE.match(line.strip()):
            recovery = {
                "entries": int(found["entries"]),
                "seconds": float(found["seconds"]),
                "entries_per_second": float(found["rate"]),
                "digest_equal": True,
            }
    return {"stages": stages, "recovery": recovery}


def parse_binding_bench(output: str) -> dict[str, Any]:
    stages = {}
    for line in output.splitlines():
        if found := _BINDING_LINE.match(line.strip()):
            stages[found["name"].strip()] = {
                "p50_us": float(found["p50"]),
                "p99_us": float(found["p99"]),
                "p99_9_us": float(found["p999"]),
                "per_second": float(found["rate"]),
            }
    return {"stages": stages}


def engine_results(scale: Scale) -> dict[str, Any]:
    count = str(scale.engine_decisions)
    rust = subprocess.run(
        ["cargo", "run", "--quiet", "--release", "-p", "engine_bench", "--", count],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    binding = subprocess.run(
        [sys.executable, str(REPO / "bench" / "engine_py.py"), count],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return {
        "decisions": scale.engine_decisions,
        "rust": parse_engine_bench(rust.stdout),
        "binding": parse_binding_bench(binding.stdout),
    }


def grpc_results(scale: Scale, logs: Path) -> dict[str, Any]:
    """gRPC unary and streaming from bench/grpc.py, when it exists.

    The hook: bench/grpc.py defines `run_suite(fast: bool, logs: Path) -> dict` returning
    `{"unary": {...}, "streaming": {...}}`, each with `throughput_per_second` and `latency_ms`
    percentiles (`p50`, `p90`, `p99`, `p99.9`)."""
    path = REPO / "bench" / "grpc.py"
    if not path.exists():
        return {"available": False, "why": "bench/grpc.py does not exist yet"}
    spec = importlib.util.spec_from_file_location("bench_grpc", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run_suite = getattr(module, "run_suite", None)
    if run_suite is None:
        return {"available": False, "why": "bench/grpc.py has no run_suite(fast, logs)"}
    result: dict[str, Any] = run_suite(scale is FAST, logs)
    return {"available": True, **result}


def ratios(ours_run: dict[str, Any], baseline_run: dict[str, Any]) -> dict[str, Any]:
    """Our throughput and p99 against the baseline's, under the same load. A p99 at the
    generator's ceiling is only a lower bound, and then so is the ratio it enters."""
    throughput = ours_run["throughput_per_second"] / max(
        baseline_run["throughput_per_second"], 1e-9
    )
    p99 = ours_run["latency_ms"]["p99"] / max(baseline_run["latency_ms"]["p99"], 1e-9)
    return {
        "throughput": round(throughput, 3),
        "p99": round(p99, 4),
        "ours_p99_clipped": ours_run["latency_ms"]["p99"] >= LATENCY_CLIP_MS,
        "baseline_p99_clipped": baseline_run["latency_ms"]["p99"] >= LATENCY_CLIP_MS,
    }


def http_results(
    scale: Scale, source: bytes, transactions: list[CardTransaction], logs: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every HTTP run, ours and the baseline's, and the recovery after our saturation run."""
    fixed = transactions[: scale.fixed_rate_rows] if scale.fixed_rate_rows else transactions
    saturating = transactions[: scale.saturation_rows] if scale.saturation_rows else transactions
    runs: dict[str, Any] = {}
    for rate in scale.rates:
        with (
            fresh_database("bench") as database,
            ours(database, logs, f"rate-{rate:g}") as (
                url,
                _server,
            ),
        ):
            runs[f"ours at {rate:g}/s"] = replay_load(url, source, fixed, rate, 256)

    with fresh_database("bench") as database:
        with ours(database, logs, "saturation") as (url, server):
            runs["ours at saturation"] = replay_load(
                url, source, saturating, None, scale.concurrency
            )
            # A crash, not a shutdown: no final snapshot, the journal is all there is.
            server.kill()
            server.wait()
        recovery = measure_recovery(database, logs, journal_count(database))

    with fresh_database("baseline") as database, baseline(database, logs, "baseline-rate") as url:
        rate = scale.rates[0]
        runs[f"baseline at {rate:g}/s"] = replay_load(url, source, fixed, rate, 256)
    with fresh_database("baseline") as database, baseline(database, logs, "baseline-sat") as url:
        runs["baseline at saturation"] = replay_load(
            url, source, saturating, None, scale.concurrency
        )
    return runs, recovery


def run(scale: Scale, file: Path | None, reports: Path) -> dict[str, Any]:
    """Run the whole suite at `scale`; the report's data (also written by bench.report)."""
    logs = reports / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    source, transactions = transactions_for(file, scale)
    started = time.time()
    result: dict[str, Any] = {
        "scale": scale.name,
        "started_unix_s": round(started),
        "machine": {"cpus": _cpus(), "load_average_at_start": _load_average()},
        "data": {
            "file": str(file) if file and file.exists() and scale is FULL else "synthetic",
            "transactions": len(transactions),
        },
    }
    print(f"bench: engine micro-benchmarks ({scale.engine_decisions} decisions)", flush=True)
    result["engine"] = engine_results(scale)
    print("bench: HTTP JIT load, ours and the baseline", flush=True)
    runs, recovery = http_results(scale, source, transactions, logs)
    result["http"], result["recovery"] = runs, recovery
    print("bench: gRPC", flush=True)
    result["grpc"] = grpc_results(scale, logs)
    first_rate = f"{scale.rates[0]:g}/s"
    result["ratios"] = {
        "saturation": ratios(runs["ours at saturation"], runs["baseline at saturation"]),
        f"at {first_rate}": ratios(
            runs[f"ours at {first_rate}"], runs[f"baseline at {first_rate}"]
        ),
    }
    result["machine"]["load_average_at_end"] = _load_average()
    result["seconds"] = round(time.time() - started, 1)
    return result


def _cpus() -> int:
    return os.cpu_count() or 0


def _load_average() -> list[float]:
    return [round(load, 2) for load in os.getloadavg()]
