"""The webhook intake and its consumers, against a `pyjit serve` process on a fresh database
of the machine's PostgreSQL (127.0.0.1:5432), once with the PostgreSQL queue and once with
RabbitMQ (127.0.0.1:5672, a fresh vhost), so each figure has the other as its comparison.

Each delivery is signed, carries one transaction event, and changes the ledger: a stand-in
authorization of $0.01 under a JIT token the gateway never saw, so the consumer must hold
money through the decider and the journal.

1. intake at full speed: deliveries with `--concurrency` in flight; deliveries/s accepted
   durably and the latency to the 200 (p50, p99, max);
2. steady load: `--rate` deliveries/s for `--seconds`, paced from each delivery's due time;
   the lag from each 200 to the `webhook_events` row its consumer wrote after the ledger
   change (p50, p99, max).

Usage: .venv/bin/python bench/webhooks.py [--deliveries 3000] [--concurrency 32]
       [--rate 200] [--seconds 10]
Reports are printed and written to bench/reports/webhooks.json.
"""

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
from hdrh.histogram import HdrHistogram

REPO = Path(__file__).resolve().parents[1]
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
USERNAME, PASSWORD = "bench-processor", "Bench-Secret-Password-1!"
HOOK_USER, HOOK_PASSWORD = "bench-marqeta", "Bench-Hook-Password-1!"
SECRET = "bench-webhook-secret-0123456789"
CARDS = 50


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def basic(username: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def program() -> bytes:
    cards = [f"bc{n}" for n in range(CARDS)]
    return orjson.dumps(
        {
            "program": {"token": "bench", "currency_code": "USD"},
            "cardproducts": [
                {
                    "token": "bp",
                    "name": "Bench",
                    "config": {"jit_funding": {"programgateway_funding_source": {"enabled": True}}},
                }
            ],
            "users": [
                {"token": f"bu{n}", "first_name": "B", "last_name": str(n)} for n in range(CARDS)
            ],
            "cards": [
                {"token": card, "user_token": f"bu{n}", "card_product_token": "bp"}
                for n, card in enumerate(cards)
            ],
            "gpaorders": [
                {"token": f"bg{n}", "user_token": f"bu{n}", "amount": "1000000.00"}
                for n in range(CARDS)
            ],
        }
    )


def delivery(n: int) -> tuple[str, bytes]:
    token = f"bench-{n}-{secrets.token_hex(4)}"
    card = n % CARDS
    event = {
        "token": token,
        "type": "authorization",
        "state": "PENDING",
        "amount": "0.01",
        "currency_code": "USD",
        "card_token": f"bc{card}",
        "user_token": f"bu{card}",
        "created_time": datetime.now(UTC).isoformat(),
        "card_acceptor": {"mid": "m", "mcc": "5411", "name": "Bench"},
        "gpa_order": {
            "jit_funding": {
                "token": f"j-{token}",
                "method": "pgfs.authorization",
                "user_token": f"bu{card}",
                "amount": "0.01",
            }
        },
    }
    return token, orjson.dumps({"transactions": [event]})


class Server:
    def __init__(self, rabbitmq_url: str | None) -> None:
        self.database = f"bench_webhooks_{secrets.token_hex(4)}"
        self.port = free_port()
        self.rabbitmq_url = rabbitmq_url
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = ADMIN_URL.rsplit("/", 1)[0] + f"/{self.database}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, log: Path) -> None:
        subprocess.run(["psql", ADMIN_URL, "-qc", f'CREATE DATABASE "{self.database}"'], check=True)
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "PYJIT_HTTP_ADDR": f"127.0.0.1:{self.port}",
            "PYJIT_GRPC_ADDR": f"127.0.0.1:{free_port()}",
            "PYJIT_HOME": str(REPO / "bench" / "reports" / self.database),
            "PYJIT_GATEWAY_USERNAME": USERNAME,
            "PYJIT_GATEWAY_PASSWORD": PASSWORD,
            "PYJIT_WEBHOOK_USERNAME": HOOK_USER,
            "PYJIT_WEBHOOK_PASSWORD": HOOK_PASSWORD,
            "PYJIT_WEBHOOK_SECRET": SECRET,
            "PYJIT_LOG_LEVEL": "WARNING",
        }
        if self.rabbitmq_url:
            env["RABBITMQ_URL"] = self.rabbitmq_url
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [str(REPO / ".venv" / "bin" / "pyjit"), "serve"],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(30)
            self.process.kill()
        subprocess.run(
            ["psql", ADMIN_URL, "-qc", f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'],
            check=False,
        )


async def wait_ready(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(600):
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(url + "/ready") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise RuntimeError("the gateway never became ready")


async def post(session: aiohttp.ClientSession, url: str, body: bytes) -> int:
    headers = {
        "Authorization": basic(HOOK_USER, HOOK_PASSWORD),
        "Content-Type": "application/json",
        "X-Marqeta-Signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }
    async with session.post(url + "/webhooks/marqeta", data=body, headers=headers) as response:
        await response.read()
        return response.status


def figures(histogram: HdrHistogram) -> dict[str, float]:
    return {
        "p50_ms": histogram.get_value_at_percentile(50) / 1000,
        "p99_ms": histogram.get_value_at_percentile(99) / 1000,
        "max_ms": histogram.get_max_value() / 1000,
    }


async def full_speed(
    session: aiohttp.ClientSession, url: str, count: int, concurrency: int
) -> dict[str, Any]:
    bodies = [delivery(n)[1] for n in range(count)]
    latency = HdrHistogram(1, 60_000_000, 3)
    failures = 0
    next_index = 0

    async def worker() -> None:
        nonlocal next_index, failures
        while next_index < count:
            body = bodies[next_index]
            next_index += 1
            started = time.perf_counter_ns()
            status = await post(session, url, body)
            latency.record_value(max(1, (time.perf_counter_ns() - started) // 1000))
            failures += status != 200

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "deliveries": count,
        "failures": failures,
        "per_second": round(count / elapsed),
        **figures(latency),
    }


async def steady(
    session: aiohttp.ClientSession, server: Server, rate: float, seconds: float
) -> dict[str, Any]:
    count = int(rate * seconds)
    answered: dict[str, float] = {}
    start = time.perf_counter() + 0.1

    async def send(n: int) -> None:
        token, body = delivery(n)
        await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        if await post(session, server.url, body) == 200:
            answered[token] = time.time()

    await asyncio.gather(*(send(n) for n in range(count)))
    connection = await asyncpg.connect(server.database_url)
    try:
        for _ in range(1200):
            rows = await connection.fetch(
                "SELECT event_token, extract(epoch FROM applied_at)::float8 AS at "
                "FROM webhook_events WHERE event_token = ANY($1)",
                list(answered),
            )
            if len(rows) == len(answered):
                break
            await asyncio.sleep(0.1)
    finally:
        await connection.close()
    lag = HdrHistogram(1, 600_000_000, 3)
    for row in rows:
        lag.record_value(max(1, int((row["at"] - answered[row["event_token"]]) * 1_000_000)))
    return {
        "deliveries": count,
        "answered": len(answered),
        "applied": len(rows),
        "rate": rate,
        **{f"lag_{k}": v for k, v in figures(lag).items()},
    }


async def applied(server: Server, count: int) -> None:
    connection = await asyncpg.connect(server.database_url)
    try:
        for _ in range(6000):
            if await connection.fetchval("SELECT count(*) FROM webhook_events") >= count:
                return
            await asyncio.sleep(0.1)
    finally:
        await connection.close()


async def measure(server: Server, options: argparse.Namespace) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        await wait_ready(session, server.url)
        headers = {"Authorization": basic(USERNAME, PASSWORD)}
        async with session.post(
            server.url + "/admin/program", data=program(), headers=headers
        ) as r:
            assert r.status == 200, await r.text()
        started = time.perf_counter()
        intake = await full_speed(session, server.url, options.deliveries, options.concurrency)
        # The steady run starts on an empty queue, so its lag is its own.
        await applied(server, options.deliveries)
        intake["applied_per_second"] = round(options.deliveries / (time.perf_counter() - started))
        lag = await steady(session, server, options.rate, options.seconds)
        return {"intake": intake, "steady": lag}


def rabbitmq_vhost() -> str:
    vhost = f"bench_webhooks_{secrets.token_hex(4)}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        check=True,
    )
    return vhost


def line(name: str, result: dict[str, Any]) -> str:
    intake, lag = result["intake"], result["steady"]
    return (
        f"{name:<10} intake {intake['per_second']:>6}/s  200 p50 {intake['p50_ms']:.2f} ms "
        f"p99 {intake['p99_ms']:.2f} ms max {intake['max_ms']:.1f} ms "
        f"({intake['failures']} failed), applied {intake['applied_per_second']}/s "
        f"| at {lag['rate']:.0f}/s: lag to ledger "
        f"p50 {lag['lag_p50_ms']:.1f} ms p99 {lag['lag_p99_ms']:.1f} ms "
        f"max {lag['lag_max_ms']:.1f} ms ({lag['applied']}/{lag['answered']} applied)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    options = parser.parse_args()
    reports = REPO / "bench" / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    vhost = rabbitmq_vhost()
    try:
        for name, url in (
            ("postgres", None),
            ("rabbitmq", f"amqp://guest:guest@127.0.0.1/{vhost}"),
        ):
            server = Server(url)
            try:
                server.start(reports / f"webhooks-{name}.log")
                results[name] = asyncio.run(measure(server, options))
            finally:
                server.stop()
            print(line(name, results[name]), flush=True)
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False)
    pg, mq = results["postgres"]["intake"], results["rabbitmq"]["intake"]
    print(
        f"rabbitmq / postgres: intake {mq['per_second'] / pg['per_second']:.2f}x, "
        f"200 p99 {mq['p99_ms'] / pg['p99_ms']:.2f}x"
    )
    (reports / "webhooks.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
