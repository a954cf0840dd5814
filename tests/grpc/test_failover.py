"""Killing a shard's primary decider (SIGKILL) in the middle of load through an edge hands the
shard to its standby: every message gets a decider's answer (none is lost, none falls back
to stand-in), every answer given is in the journal and is the one the new primary gives for
that token again, and no account approves more than it holds."""

import asyncio
import itertools
import time

import aiohttp
import grpc
import orjson

from pyjit.v1 import accounts_pb2, accounts_pb2_grpc, jit_pb2, jit_pb2_grpc
from tests.grpc.cluster import (
    Cluster,
    Served,
    jit_body,
    post_jit,
    post_program,
    program,
    wait_http,
    wait_serving,
)

USERS = 4
MESSAGES = 600
CONCURRENCY = 16
KILL_AFTER = 150


async def wait_following(standby: Served) -> None:
    for _ in range(600):
        if "standby: following the journal" in standby.log():
            return
        assert standby.process.poll() is None, standby.log()
        await asyncio.sleep(0.05)
    raise AssertionError(f"standby never followed:\n{standby.log()}")


async def test_primary_killed_mid_load_hands_over_without_losing_an_answer(
    cluster: Cluster, database_url: str, second_database_url: str
) -> None:
    primary = cluster.start("decider", database_url)
    await wait_serving(primary)
    # Started first, the standby would take the free lease and be the primary itself.
    standby = cluster.start("decider", database_url, standby=True)
    await wait_following(standby)
    edge = cluster.start(
        "edge",
        second_database_url,
        shards=f"{primary.grpc_addr}|{standby.grpc_addr}",
        extra_env={"PYJIT_EDGE_BUDGET_MS": "6000"},
    )
    await wait_http(edge)

    bodies = {
        f"f{i}": jit_body(f"f{i}", "1.00", card=f"c{n}", user=f"u{n}")
        for i, n in zip(range(MESSAGES), itertools.cycle(range(1, USERS + 1)))
    }
    answers: dict[str, tuple[int, bytes]] = {}
    killed_at: list[float] = []
    async with aiohttp.ClientSession() as session:
        await post_program(session, edge.http_url, program("100.00", users=USERS))
        queue = iter(bodies.items())

        async def sender() -> None:
            for token, body in queue:
                answers[token] = await post_jit(session, edge.http_url, body)
                if len(answers) == KILL_AFTER and not killed_at:
                    killed_at.append(time.monotonic())
                    primary.kill()

        await asyncio.gather(*(sender() for _ in range(CONCURRENCY)))
    handover_s = time.monotonic() - killed_at[0]

    assert len(answers) == MESSAGES
    approved = dict.fromkeys((f"u{n}" for n in range(1, USERS + 1)), 0)
    for status, body in answers.values():
        funding = orjson.loads(body)["jit_funding"]
        assert status in (200, 402) and funding.get("memo") != "stand-in", body
        approved[funding["user_token"]] += status == 200
    assert approved == dict.fromkeys(approved, 100)
    assert "took the writer lease" in standby.log()

    async with grpc.aio.insecure_channel(standby.grpc_addr) as channel:
        jit = jit_pb2_grpc.JitStub(channel)
        for token, (status, body) in answers.items():
            replay = await jit.Decide(jit_pb2.DecideRequest(raw=bodies[token]))
            assert replay.decision.replayed, token
            assert (replay.decision.http_status, replay.decision.body) == (status, body)
        accounts = accounts_pb2_grpc.AccountsStub(channel)
        for holder in approved:
            found = await accounts.GetBalance(accounts_pb2.GetBalanceRequest(account_token=holder))
            assert found.held.amount_minor == 100_00 and found.available.amount_minor == 0
    print(f"load with a primary killed after {KILL_AFTER} answers finished {handover_s:.2f}s later")


async def test_a_standby_stopped_before_taking_over_exits_cleanly(
    cluster: Cluster, database_url: str
) -> None:
    primary = cluster.start("decider", database_url)
    await wait_serving(primary)
    standby = cluster.start("decider", database_url, standby=True)
    await wait_following(standby)

    assert standby.terminate() == 0
    assert "took the writer lease" not in standby.log()
    assert primary.process.poll() is None
