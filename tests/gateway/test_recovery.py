"""Proves recovery: after a clean stop (SIGTERM's path: drain, commit, snapshot) a new
gateway on the same journal has the identical engine state and replays every earlier answer
byte for byte; with no snapshot at all the journal alone rebuilds the same state; and the
hold-expiry task journals what it releases, so the read models follow."""

import asyncio
from typing import Any

import asyncpg
import orjson

from pyjit.recovery import RecoveryReport
from tests.gateway.conftest import (
    Gateway,
    gateway_config,
    jit_body,
    program,
    start_gateway,
    stop_gateway,
)


async def digest_and_answers(gateway: Gateway, bodies: list[bytes]) -> tuple[str, list[Any]]:
    _, snapshot = await gateway.admin("POST", "/admin/snapshot")
    return snapshot["digest"], [await gateway.jit(body) for body in bodies]


async def traffic(gateway: Gateway) -> list[bytes]:
    status, answer = await gateway.admin("POST", "/admin/program", program("100.00", users=3))
    assert status == 200, answer
    bodies = [
        jit_body(f"rec-{n}", amount=f"{n}.25", card=f"c{n % 3 + 1}", user=f"u{n % 3 + 1}")
        for n in range(1, 30)
    ]
    bodies.append(
        jit_body(
            "rec-clear",
            method="pgfs.authorization.capture",
            amount="1.00",
            original="rec-3",
            card="c1",
            user="u1",
        )
    )
    for body in bodies:
        status, _ = await gateway.jit(body)
        assert status in (200, 402)
    return bodies


async def test_restart_after_clean_stop(database_url: str, session: Any) -> None:
    config = gateway_config(database_url)
    first = await start_gateway(config, session)
    bodies = await traffic(first)
    digest, answers = await digest_and_answers(first, bodies)
    await stop_gateway(first)

    second = await start_gateway(config, session)
    try:
        digest_after, answers_after = await digest_and_answers(second, bodies)
        _, report = await second.admin("GET", "/admin/reconciliation")
    finally:
        await stop_gateway(second)
    assert digest_after == digest
    assert answers_after == answers
    assert report["mismatches"] == 0


async def test_journal_alone_rebuilds_the_state(database_url: str, session: Any) -> None:
    config = gateway_config(database_url)
    first = await start_gateway(config, session)
    bodies = await traffic(first)
    digest, answers = await digest_and_answers(first, bodies)
    await stop_gateway(first)
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("DELETE FROM snapshots")
    finally:
        await connection.close()

    second = await start_gateway(config, session)
    try:
        async with session.get(f"{second.url}/ready") as response:
            ready = orjson.loads(await response.read())
        digest_after, answers_after = await digest_and_answers(second, bodies)
    finally:
        await stop_gateway(second)
    assert ready["checks"]["recovery"]["entries_applied"] > 0
    assert digest_after == digest
    assert answers_after == answers


async def test_hold_expiry_is_journaled(database_url: str, session: Any) -> None:
    gateway = await start_gateway(gateway_config(database_url, expiry_interval_s=0.2), session)
    try:
        status, _ = await gateway.admin("POST", "/admin/program", program("100.00"))
        # Authorized long ago: its hold is past the default 7-day expiry.
        status, _ = await gateway.jit(
            jit_body("old-auth", amount="40.00", created_time="2020-01-01T00:00:00Z")
        )
        assert status == 200
        for _ in range(50):
            _, report = await gateway.admin("GET", "/admin/reconciliation")
            if report["accounts"][0]["held_minor"] == 0:
                break
            await asyncio.sleep(0.1)
        connection = await asyncpg.connect(database_url)
        try:
            expiries = await connection.fetchval(
                "SELECT count(*) FROM journal WHERE kind = 'expiry'"
            )
            hold = await connection.fetchval(
                "SELECT state FROM holds WHERE hold_token = 'old-auth'"
            )
        finally:
            await connection.close()
    finally:
        await stop_gateway(gateway)
    assert report["accounts"][0]["held_minor"] == 0
    assert report["mismatches"] == 0
    assert expiries >= 1
    assert hold == "EXPIRED"


def test_the_replay_rate_leaves_out_the_snapshots_restore() -> None:
    # 1,000 entries replayed in the 0.5 s after a 1.5 s restore: 2,000/s, not 500/s.
    report = RecoveryReport(10, 1_000, 1_010, seconds=2.0, snapshot_seconds=1.5)
    assert report.entries_per_second == 2_000
