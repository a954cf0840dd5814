"""gRPC decisions: unary and streaming rates, HTTP through an edge versus all-in-one, failover.

Every server is a real `pyjit serve` process on loopback with its journal in a fresh
database on the machine's PostgreSQL (127.0.0.1:5432); the load comes from this process.

1. unary `Jit.Decide`: a fixed number of calls in flight on one channel;
2. streaming `Jit.DecideStream`: a few streams, each with a window of messages in flight,
   sent one per frame, then STREAM_BATCH per frame (`DecideBatch`), the batch callers' way;
3. HTTP /jit through `--role edge` to a `--role decider` over gRPC, against the same load
   sent to one `--role all` process (the ratio is the price of the extra hop);
4. failover: a primary and its standby behind one channel; the primary is killed (SIGKILL)
   under load, and the time from the kill to the first answer from the standby is reported.

Latency is per message, from send to answer, in HdrHistogram. Every authorization is 1.00
on accounts funded to never run out, so every message costs a durable decision.

Usage: .venv/bin/python -m bench.grpc [--fast]  (as a module: run as a script, this file's
directory would come first on sys.path and its name would shadow the grpc package)
Prints the figures and writes bench/reports/grpc.json; `run_suite(fast, logs)` is the hook
bench/suite.py calls.
"""

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import grpc
import orjson
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hdrh.histogram import HdrHistogram

from pyjit.v1 import jit_pb2, jit_pb2_grpc, program_pb2, program_pb2_grpc

REPO = Path(__file__).resolve().parents[1]
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
USERNAME = "bench-processor"
PASSWORD = "Bench-Secret-Password-1!"
AUTH = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
HOLDERS = 500
FULL = {"unary": 20_000, "streaming": 60_000, "http": 10_000, "failover": 3_000}
FAST = {"unary": 600, "streaming": 2_000, "http": 400, "failover": 600}
UNARY_IN_FLIGHT = 128
STREAMS, STREAM_WINDOW, STREAM_BATCH = 4, 256, 64
HTTP_IN_FLIGHT = 64


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    name = f"pyjit_grpc_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin = await asyncpg.connect(ADMIN_URL)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


class Server:
    """One `pyjit serve` process."""

    def __init__(self, role: str, database_url: str, logs: Path, **options: Any) -> None:
        self.grpc_addr = f"127.0.0.1:{options.get('grpc_port') or free_port()}"
        self.http_url = f"http://127.0.0.1:{free_port()}"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "PYJIT_HTTP_ADDR": self.http_url.removeprefix("http://"),
            "PYJIT_GRPC_ADDR": self.grpc_addr,
            "PYJIT_GATEWAY_USERNAME": USERNAME,
            "PYJIT_GATEWAY_PASSWORD": PASSWORD,
            "PYJIT_LOG_LEVEL": "WARNING",
            "PYJIT_SHARDS": options.get("shards", ""),
            "PYJIT_EDGE_BUDGET_MS": "5000",
            "PYTHONPATH": str(REPO),
        }
        command = [sys.executable, "-m", "pyjit", "serve", "--role", role]
        if options.get("standby"):
            command.append("--standby")
        log = logs / f"grpc-{role}-{secrets.token_hex(2)}.log"
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                command, env=env, cwd=REPO, stdout=output, stderr=subprocess.STDOUT
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def running(*servers: Server) -> Iterator[None]:
    try:
        yield
    finally:
        for server in servers:
            server.stop()


async def serving(server: Server) -> None:
    async with grpc.aio.insecure_channel(server.grpc_addr) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(600):
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.grpc_addr} exited at start")
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{server.grpc_addr} never served")


async def listening(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{url}/health") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never answered")


def program_document() -> bytes:
    """HOLDERS users, each with one card and more money than any run spends."""
    users = [f"bu{n}" for n in range(HOLDERS)]
    return orjson.dumps(
        {
            "program": {"token": "bench", "currency_code": "USD"},
            "cardproducts": [
                {
                    "token": "bp",
                    "name": "Bench cards",
                    "config": {"jit_funding": {"programgateway_funding_source": {"enabled": True}}},
                }
            ],
            "users": [{"token": user, "first_name": "Bench"} for user in users],
            "cards": [
                {"token": f"bc{n}", "user_token": user, "card_product_token": "bp"}
                for n, user in enumerate(users)
            ],
            "gpaorders": [
                {"token": f"bg{n}", "user_token": user, "amount": "1000000.00"}
                for n, user in enumerate(users)
            ],
        }
    )


def message(run: str, n: int) -> bytes:
    holder = n % HOLDERS
    token = f"{run}-{n}"
    return orjson.dumps(
        {
            "token": f"t-{token}",
            "type": "authorization",
            "state": "PENDING",
            "amount": "1.00",
            "currency_code": "USD",
            "card_token": f"bc{holder}",
            "user_token": f"bu{holder}",
            "created_time": "2025-03-01T12:00:00Z",
            "card_acceptor": {"mid": "m1", "mcc": "5411", "name": "Bench", "country_code": "USA"},
            "gpa_order": {
                "jit_funding": {
                    "token": token,
                    "method": "pgfs.authorization",
                    "user_token": f"bu{holder}",
                    "amount": "1.00",
                }
            },
        }
    )


async def load_program(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        request = program_pb2.LoadProgramRequest(document=program_document())
        await program_pb2_grpc.ProgramStub(channel).LoadProgram(request, timeout=60)


def summary(histogram: HdrHistogram, count: int, seconds: float) -> dict[str, Any]:
    latency = {f"p{q:g}": histogram.get_value_at_percentile(q) / 1000 for q in PERCENTILES}
    latency["max"] = histogram.get_max_value() / 1000
    return {
        "messages": count,
        "seconds": round(seconds, 3),
        "throughput_per_second": round(count / seconds, 1),
        "latency_ms": latency,
    }


async def unary(address: str, run: str, count: int) -> dict[str, Any]:
    histogram = HdrHistogram(1, 60_000_000, 3)
    bodies = iter([message(run, n) for n in range(count)])
    async with grpc.aio.insecure_channel(address) as channel:
        jit = jit_pb2_grpc.JitStub(channel)

        async def worker() -> None:
            for body in bodies:
                sent = time.perf_counter_ns()
                await jit.Decide(jit_pb2.DecideRequest(raw=body), timeout=10)
                histogram.record_value(max((time.perf_counter_ns() - sent) // 1000, 1))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(UNARY_IN_FLIGHT)))
        return summary(histogram, count, time.perf_counter() - started)


async def streaming(address: str, run: str, count: int, batch: int) -> dict[str, Any]:
    """STREAMS streams, each with STREAM_WINDOW messages in flight, sent `batch` per frame."""
    histogram = HdrHistogram(1, 60_000_000, 3)
    per_stream = count // STREAMS // batch * batch
    async with grpc.aio.insecure_channel(address) as channel:
        jit = jit_pb2_grpc.JitStub(channel)

        async def one_stream(stream: int) -> None:
            window = asyncio.Semaphore(max(STREAM_WINDOW // batch, 1))
            sent_ns: dict[int, int] = {}

            async def batches() -> AsyncIterator[jit_pb2.DecideBatch]:
                first = stream * per_stream
                for start in range(first, first + per_stream, batch):
                    await window.acquire()
                    sent_ns[start] = time.perf_counter_ns()
                    requests = [
                        jit_pb2.DecideRequest(raw=message(run, n), request_id=str(n))
                        for n in range(start, start + batch)
                    ]
                    yield jit_pb2.DecideBatch(requests=requests)

            async for reply in jit.DecideStream(batches()):
                start = int(reply.responses[0].request_id)
                elapsed = time.perf_counter_ns() - sent_ns.pop(start)
                histogram.record_value(max(elapsed // 1000, 1), len(reply.responses))
                window.release()

        started = time.perf_counter()
        await asyncio.gather(*(one_stream(stream) for stream in range(STREAMS)))
        found = summary(histogram, per_stream * STREAMS, time.perf_counter() - started)
        return {**found, "batch": batch}


async def http(url: str, run: str, count: int) -> dict[str, Any]:
    histogram = HdrHistogram(1, 60_000_000, 3)
    bodies = iter([message(run, n) for n in range(count)])
    headers = {"Authorization": AUTH, "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=HTTP_IN_FLIGHT)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for body in bodies:
                sent = time.perf_counter_ns()
                async with session.post(f"{url}/jit", data=body, headers=headers) as response:
                    await response.read()
                    assert response.status in (200, 402), response.status
                histogram.record_value(max((time.perf_counter_ns() - sent) // 1000, 1))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(HTTP_IN_FLIGHT)))
        return summary(histogram, count, time.perf_counter() - started)


def cpu_seconds(*servers: Server) -> float:
    """User plus system CPU the servers' processes have used (Linux /proc), all threads."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for server in servers:
        fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


async def with_cpu(run: Any, *servers: Server) -> dict[str, Any]:
    """`run`'s figures plus the servers' CPU per message: on a machine shared with other
    work, CPU per message moves far less than throughput does."""
    before = cpu_seconds(*servers)
    found: dict[str, Any] = await run
    used = cpu_seconds(*servers) - before
    found["server_cpu_us_per_message"] = round(used / found["messages"] * 1e6, 1)
    return found


async def measure_rpc(logs: Path, sizes: dict[str, int]) -> dict[str, Any]:
    async with fresh_database() as url:
        server = Server("all", url, logs)
        with running(server):
            await serving(server)
            await load_program(server.grpc_addr)
            await unary(server.grpc_addr, "warm", 200)
            address, count = server.grpc_addr, sizes["streaming"]
            found = {"unary": await with_cpu(unary(address, "u", sizes["unary"]), server)}
            found["streaming"] = await with_cpu(streaming(address, "s", count, 1), server)
            found["streaming_batched"] = await with_cpu(
                streaming(address, "b", count, STREAM_BATCH), server
            )
            found["http_all_in_one"] = await with_cpu(
                http(server.http_url, "h", sizes["http"]), server
            )
    return found


async def measure_edge(logs: Path, sizes: dict[str, int]) -> dict[str, Any]:
    async with fresh_database() as decider_url, fresh_database() as edge_url:
        decider = Server("decider", decider_url, logs)
        edge = Server("edge", edge_url, logs, shards=decider.grpc_addr)
        with running(edge, decider):
            await serving(decider)
            await listening(edge.http_url)
            await load_program(decider.grpc_addr)
            await http(edge.http_url, "warm", 200)
            return await with_cpu(http(edge.http_url, "e", sizes["http"]), edge, decider)


async def measure_failover(logs: Path, count: int) -> dict[str, Any]:
    """Kill the primary a third of the way through; time to the standby's first answer."""
    async with fresh_database() as url:
        primary = Server("decider", url, logs)
        with running(primary):
            await serving(primary)
            await load_program(primary.grpc_addr)
            standby = Server("decider", url, logs, standby=True)
            with running(standby):
                await asyncio.sleep(2.0)  # recovery, then following the journal
                return await _failover_load(primary, standby, count)


async def _failover_load(primary: Server, standby: Server, count: int) -> dict[str, Any]:
    """The first answer to a call made after the primary is dead can only be the standby's."""
    from pyjit.routing import CHANNEL_OPTIONS

    target = f"ipv4:{primary.grpc_addr},{standby.grpc_addr}"
    calls: list[tuple[float, float]] = []
    moments: dict[str, float] = {}
    errors = 0
    counter = itertools.count()
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        jit = jit_pb2_grpc.JitStub(channel)

        async def worker() -> None:
            nonlocal errors
            while (n := next(counter)) < count:
                if n == count // 3 and "killed" not in moments:
                    moments["killed"] = time.perf_counter()
                    primary.process.kill()
                    await asyncio.to_thread(primary.process.wait)
                    moments["dead"] = time.perf_counter()
                started = time.perf_counter()
                try:
                    await jit.Decide(jit_pb2.DecideRequest(raw=message("f", n)), timeout=30)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                calls.append((started, time.perf_counter()))

        await asyncio.gather(*(worker() for _ in range(16)))
    first = min(end for started, end in calls if started >= moments["dead"])
    return {
        "messages": count,
        "errors": errors,
        "primary_killed_to_first_standby_answer_s": round(first - moments["killed"], 3),
    }


async def measure(fast: bool, logs: Path) -> dict[str, Any]:
    sizes = FAST if fast else FULL
    found = await measure_rpc(logs, sizes)
    found["http_through_edge"] = await measure_edge(logs, sizes)
    found["edge_hop_ratio"] = {
        "throughput": round(
            found["http_through_edge"]["throughput_per_second"]
            / found["http_all_in_one"]["throughput_per_second"],
            3,
        ),
        "p99": round(
            found["http_through_edge"]["latency_ms"]["p99"]
            / found["http_all_in_one"]["latency_ms"]["p99"],
            3,
        ),
    }
    found["failover"] = await measure_failover(logs, sizes["failover"])
    return found


def run_suite(fast: bool, logs: Path) -> dict[str, Any]:
    """The hook bench/suite.py calls."""
    return asyncio.run(measure(fast, logs))


def render(found: dict[str, Any]) -> str:
    lines = [
        f"{'run':<20}{'msgs':>7}{'per s':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}"
        f"{'server CPU us/msg':>19}"
    ]
    for name in (
        "unary",
        "streaming",
        "streaming_batched",
        "http_all_in_one",
        "http_through_edge",
    ):
        run = found[name]
        latency = run["latency_ms"]
        lines.append(
            f"{name:<20}{run['messages']:>7}{run['throughput_per_second']:>8.0f}"
            f"{latency['p50']:>9.2f}{latency['p90']:>9.2f}{latency['p99']:>9.2f}"
            f"{run['server_cpu_us_per_message']:>19.1f}"
        )
    ratio = found["edge_hop_ratio"]
    lines.append(
        f"edge hop: {ratio['throughput']:.2f}x the all-in-one throughput, "
        f"{ratio['p99']:.2f}x its p99"
    )
    failover = found["failover"]["primary_killed_to_first_standby_answer_s"]
    errors = found["failover"]["errors"]
    lines.append(
        f"failover: primary killed -> first standby answer in {failover:.3f} s "
        f"({errors} calls failed)"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", help="a few hundred messages per run")
    args = parser.parse_args()
    reports = REPO / "bench" / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    found = run_suite(args.fast, reports)
    found["machine"] = {"cpus": os.cpu_count(), "load_average": os.getloadavg()}
    (reports / "grpc.json").write_text(json.dumps(found, indent=2))
    print(render(found))


if __name__ == "__main__":
    main()
