"""Proves the gateway's behaviour under the two faults that matter most.

1. The process is killed with SIGKILL in the middle of a full-speed replay, restarted, and
   the replay repeated: every answer the first replay received is answered identically by
   the restarted gateway (so it was in the journal), no token has two effects, and all
   accounts reconcile to the cent (read model = journal deltas = engine = the replay's
   expectation).
2. PostgreSQL is stopped under load (a dedicated embedded instance, never the shared
   server): answers become 402 declines within the commit budget, with no hang and no 5xx;
   /ready reports the journal down; when PostgreSQL is back, the same process recovers
   without a restart and the accounts reconcile.
"""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest

from tests.gateway.conftest import (
    PASSWORD,
    USERNAME,
    gateway_config,
    jit_body,
    program,
    start_gateway,
    stop_gateway,
)

REPO = Path(__file__).resolve().parents[2]
HEADER = (
    "id,date,client_id,card_id,amount,use_chip,merchant_id,merchant_city,merchant_state,zip,mcc"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_sample(path: Path, rows: int, holders: int = 40, cards: int = 80) -> None:
    """A file in the multicard format: `holders` holders with `cards` cards (by default 40
    and 80), one day apart per 100 rows."""
    lines = [HEADER]
    for n in range(rows):
        amount = f"{(n * 37) % 9000 / 100 + 1:.2f}" if n % 25 else f"-{(n % 7) + 1}.50"
        day = 40179 + n / 100
        lines.append(
            f"{n},{day:.5f},{n % holders},{n % cards},{amount},Chip Transaction,"
            f"{n % 300},Austin,TX,73301,{('5411', '5812', '7995')[n % 3]}"
        )
    path.write_text("\n".join(lines) + "\n")


def server_env(database_url: str, port: int, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "PYJIT_HTTP_ADDR": f"127.0.0.1:{port}",
        # The process serves gRPC too; never the default port another run may hold.
        "PYJIT_GRPC_ADDR": f"127.0.0.1:{free_port()}",
        "PYJIT_HOME": str(home),
        "PYJIT_GATEWAY_USERNAME": USERNAME,
        "PYJIT_GATEWAY_PASSWORD": PASSWORD,
        "PYJIT_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO),
    }


def start_server(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "pyjit", "serve"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    url = f"http://{env['PYJIT_HTTP_ADDR']}/ready"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()[-3000:]
        try:
            if subprocess.run(["curl", "-sf", url], capture_output=True).returncode == 0:
                return server
        except FileNotFoundError:
            pytest.skip("curl is needed to poll the server")
        time.sleep(0.1)
    server.kill()
    raise AssertionError("the gateway did not become ready")


@contextlib.contextmanager
def serving(env: dict[str, str], log: Path, stop_within_s: float = 30) -> Iterator[None]:
    """A `pyjit serve` for the body of the `with`, stopped by SIGTERM after it."""
    server = start_server(env, log)
    try:
        yield
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(stop_within_s)


def replay(
    env: dict[str, str], sample: Path, answers: Path, report: Path
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pyjit",
            "replay",
            str(sample),
            "--quiet",
            "--url",
            f"http://{env['PYJIT_HTTP_ADDR']}",
            "--answers",
            str(answers),
            "--json",
            str(report),
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def read_answers(path: Path) -> dict[str, tuple[int, str]]:
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return {line["token"]: (line["status"], line["body"]) for line in lines}


async def decisions_committed(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return int(
            await connection.fetchval("SELECT count(*) FROM journal WHERE kind = 'decision'")
        )
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await connection.close()


@pytest.mark.timeout(240)
async def test_sigkill_mid_replay_then_repeat(database_url: str, tmp_path: Path) -> None:
    sample = tmp_path / "sample.csv"
    write_sample(sample, 4000)
    env = server_env(database_url, free_port(), tmp_path)
    server = start_server(env, tmp_path / "server.log")

    first = replay(env, sample, tmp_path / "a1.jsonl", tmp_path / "r1.json")
    while await decisions_committed(database_url) < 1500:
        assert first.poll() is None, "the replay ended before the kill"
        await asyncio.sleep(0.05)
    server.send_signal(signal.SIGKILL)
    server.wait()
    assert await asyncio.to_thread(first.wait, 120) != 0  # it saw the gateway die

    with serving(env, tmp_path / "server.log"):
        second = replay(env, sample, tmp_path / "a2.jsonl", tmp_path / "r2.json")
        assert await asyncio.to_thread(second.wait, 180) == 0

    before, after = read_answers(tmp_path / "a1.jsonl"), read_answers(tmp_path / "a2.jsonl")
    assert len(before) > 1000
    changed = {
        token: (answer, after.get(token))
        for token, answer in before.items()
        if after.get(token) != answer
    }
    assert changed == {}
    report = orjson.loads((tmp_path / "r2.json").read_bytes())
    assert report["reconciliation"]["ok"], report["reconciliation"]["mismatches"][:5]
    connection = await asyncpg.connect(database_url)
    try:
        doubled = await connection.fetch(
            "SELECT token FROM journal WHERE kind = 'decision' GROUP BY token HAVING count(*) > 1"
        )
    finally:
        await connection.close()
    assert doubled == []


@pytest.fixture
def dedicated_postgres() -> Iterator[Any]:
    """An embedded PostgreSQL in a temporary directory that this test may stop."""
    with tempfile.TemporaryDirectory(prefix="pyjit-pgstop-") as directory:
        with warnings.catch_warnings():
            # platformdirs warns that XDG_RUNTIME_DIR is unset, as it is under CI.
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server

            server = get_server(Path(directory), cleanup_mode="stop")
        yield server
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server.cleanup()


def stop_postgres(server: Any) -> None:
    from pgserver import pg_ctl

    pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=server.pgdata, user=server.system_user)


def start_postgres(server: Any) -> None:
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset, as it is under CI.
        warnings.simplefilter("ignore")
        server.ensure_postgres_running()


async def authorize(gateway: Any, token: str) -> tuple[int, float, bytes]:
    started = time.monotonic()
    status, body = await gateway.jit(jit_body(token, amount="1.00"))
    return status, time.monotonic() - started, body


@pytest.mark.timeout(120)
async def test_postgres_stopped_mid_load(
    dedicated_postgres: Any, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    url = dedicated_postgres.get_uri("postgres")
    budget_s = 0.3
    config = gateway_config(url, commit_budget_ms=300, home=tmp_path)
    gateway = await start_gateway(config, session)
    try:
        status, _ = await gateway.admin("POST", "/admin/program", program("1000.00"))
        assert status == 200
        healthy = await asyncio.gather(*(authorize(gateway, f"up-{n}") for n in range(20)))
        assert {status for status, _, _ in healthy} == {200}

        await asyncio.to_thread(stop_postgres, dedicated_postgres)
        during = await asyncio.gather(*(authorize(gateway, f"down-{n}") for n in range(40)))
        async with session.get(f"{gateway.url}/ready") as response:
            ready_status = response.status

        await asyncio.to_thread(start_postgres, dedicated_postgres)
        recovered = await _wait_for_approvals(gateway)
        _, report = await gateway.admin("GET", "/admin/reconciliation")
        replayed = await gateway.jit(jit_body("down-0", amount="1.00"))
    finally:
        await stop_gateway(gateway)

    assert {status for status, _, _ in during} == {402}
    assert max(elapsed for _, elapsed, _ in during) < budget_s + 0.5
    reasons = {orjson.loads(body)["jit_funding"].get("decline_reason") for _, _, body in during}
    assert None not in reasons
    assert ready_status == 503
    assert recovered
    assert report["mismatches"] == 0
    assert replayed == (402, during[0][2])


async def _wait_for_approvals(gateway: Any) -> bool:
    for attempt in range(100):
        status, _, _ = await authorize(gateway, f"back-{attempt}")
        if status == 200:
            return True
        await asyncio.sleep(0.1)
    return False


@pytest.mark.timeout(120)
async def test_declines_given_while_postgres_was_down_survive_a_restart(
    dedicated_postgres: Any, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    url = dedicated_postgres.get_uri("postgres")
    config = gateway_config(url, commit_budget_ms=300, home=tmp_path)
    gateway = await start_gateway(config, session)
    try:
        status, _ = await gateway.admin("POST", "/admin/program", program("1000.00"))
        assert status == 200
        await asyncio.to_thread(stop_postgres, dedicated_postgres)
        during = await asyncio.gather(*(authorize(gateway, f"lost-{n}") for n in range(5)))
    finally:
        # Stopped while the journal is still away: the queued entries die with the process.
        await stop_gateway(gateway)
    await asyncio.to_thread(start_postgres, dedicated_postgres)

    restarted = await start_gateway(config, session)
    try:
        again = [await restarted.jit(jit_body(f"lost-{n}", amount="1.00")) for n in range(5)]
        _, report = await restarted.admin("GET", "/admin/reconciliation")
        voids = await restarted.journal_count()
    finally:
        await stop_gateway(restarted)

    assert {status for status, _, _ in during} == {402}
    assert again == [(402, body) for _, _, body in during]
    assert report["mismatches"] == 0
    (account,) = report["accounts"]
    assert (account["posted_minor"], account["held_minor"]) == (100_000, 0)
    assert voids >= 1 + 5
    assert not list((tmp_path / "spill").glob("*.jsonl"))


async def test_a_replay_whose_program_is_over_one_load_sends_it_in_parts(
    database_url: str, tmp_path: Path
) -> None:
    sample = tmp_path / "many-cards.csv"
    # 4,000 holders with a card each make a program of about 1.25 MB, over the 1 MiB a load
    # takes.
    write_sample(sample, 4_000, holders=4_000, cards=4_000)
    env = server_env(database_url, free_port(), tmp_path)
    with serving(env, tmp_path / "server.log"):
        replayed = replay(env, sample, tmp_path / "a.jsonl", tmp_path / "r.json")
        assert await asyncio.to_thread(replayed.wait, 300) == 0

    report = orjson.loads((tmp_path / "r.json").read_bytes())
    assert report["reconciliation"]["ok"] and report["reconciliation"]["accounts"] == 4_000
    assert report["errors"] == 0
