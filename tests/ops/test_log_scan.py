"""Proves that a full replay leaves no card number or personal identifier in the gateway's
logs: a real `pyjit serve` process replays a synthetic day (and the first rows of the real
multicard file when ../shared/data is present) plus refused bodies that carry a card number
and an SSN, and its stderr is scanned. Every line is JSON; every decision has its line, with
token, method, outcome, reason, latency, shard and request id; and /metrics afterwards shows
the decisions, the stages, the group commits and the recovery."""

import asyncio
import base64
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from bench import gateway as gateway_bench
from pyjit.clock import SystemClock
from pyjit.logs import luhn_valid
from pyjit.profile import Profile
from pyjit.replay import ReplayOptions, replay_transactions
from pyjit.transactions import read_transactions, synthetic_transactions

REAL_FILE = Path(__file__).resolve().parents[3] / "shared" / "data"
REAL_FILE = REAL_FILE / "card_transactions_multicard_sample.csv"
PAN = "4111111111111111"
SSN = "078-05-1120"
DIGIT_RUN = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
SSN_SHAPE = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")
DECISION_FIELDS = {"token", "method", "outcome", "reason", "latency_us", "shard", "request_id"}


def serve(database_url: str, home: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = gateway_bench.free_port()
    database = database_url.rsplit("/", 1)[1]
    env = gateway_bench.environment(database, port, home)
    env["DATABASE_URL"] = database_url
    env["PYJIT_GRPC_ADDR"] = f"127.0.0.1:{gateway_bench.free_port()}"
    env["PYJIT_LOG_LEVEL"] = "INFO"
    log = home / "gateway.log"
    return gateway_bench.start_server(env, port, log), port, log


async def replay(url: str, name: str, transactions: list[Any]) -> dict[str, Any]:
    credentials = (gateway_bench.USERNAME, gateway_bench.PASSWORD)
    options = ReplayOptions(
        url=url,
        credentials=credentials,
        admin_credentials=credentials,
        rate=None,
        concurrency=16,
        seed=3,
        profile=Profile(),
        show_progress=False,
    )
    report, _ = await replay_transactions(
        name.encode(), transactions, options, SystemClock(), Console(quiet=True)
    )
    return report


async def refused_bodies(url: str) -> int:
    auth = base64.b64encode(f"{gateway_bench.USERNAME}:{gateway_bench.PASSWORD}".encode())
    headers = {"Authorization": "Basic " + auth.decode(), "Content-Type": "application/json"}
    bodies = [
        orjson.dumps({"gpa_order": {"jit_funding": {"token": PAN}}, "pan": PAN}),
        orjson.dumps({"token": "x", "card_token": PAN, "user_token": SSN, "amount": PAN}),
        f'{{"pan": "{PAN}", "ssn": "{SSN}"'.encode(),
    ]
    async with aiohttp.ClientSession() as session:
        for body in bodies:
            async with session.post(f"{url}/jit", data=body, headers=headers) as response:
                assert 400 <= response.status < 500
        async with session.get(f"{url}/metrics") as response:
            assert response.status == 200
            metrics_text = await response.text()
    families = {family.name: family for family in text_string_to_metric_families(metrics_text)}
    for name in (
        "pyjit_jit_decisions",
        "pyjit_jit_decision_seconds",
        "pyjit_jit_stage_seconds",
        "pyjit_journal_commit_batch_entries",
        "pyjit_recovery_seconds",
    ):
        assert sum(s.value for s in families[name].samples if not s.name.endswith("_created")) > 0
    return len(bodies)


async def test_a_full_replay_logs_no_card_data(database_url: str, tmp_path: Path) -> None:
    server, port, log = serve(database_url, tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        reports = [await replay(url, "log scan synthetic", synthetic_transactions(400, seed=5))]
        if REAL_FILE.exists():
            rows = read_transactions(REAL_FILE)[:1500]
            reports.append(await replay(url, "log scan real", rows))
        refused = await refused_bodies(url)
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.to_thread(server.wait, 60)

    lines = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.strip()]
    decisions = [line for line in lines if line["msg"] == "decision"]
    rejected = [line for line in lines if line["msg"] == "rejected"]
    assert all(report["errors"] == 0 for report in reports)
    assert len(decisions) == sum(report["messages_sent"] for report in reports)
    assert all(set(line) >= DECISION_FIELDS for line in decisions)
    assert len(rejected) == refused

    assert PAN not in log.read_text() and SSN not in log.read_text()
    # Every value but the line's own timestamp (13 digits of epoch milliseconds).
    values = " | ".join(str(v) for line in lines for k, v in line.items() if k != "ts_ms")
    card_numbers = [run for run in DIGIT_RUN.findall(values) if luhn_valid(run)]
    assert card_numbers == []
    assert SSN_SHAPE.findall(values) == []
