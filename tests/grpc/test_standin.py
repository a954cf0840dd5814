"""Stand-in: with its shard down, an edge answers by policy (decline by default, approve up
to an amount for chosen MCCs, accept what reports money already moved), records each answer
before sending it, answers a repeated token the same way, and once the decider is back the
answers are applied there exactly once: a second delivery changes nothing."""

import asyncio

import aiohttp
import asyncpg
import grpc
import orjson

from pyjit.v1 import (
    accounts_pb2,
    accounts_pb2_grpc,
    jit_pb2,
    jit_pb2_grpc,
    program_pb2,
    program_pb2_grpc,
)
from tests.grpc.cluster import (
    Cluster,
    Served,
    free_port,
    jit_body,
    post_jit,
    program,
    wait_http,
    wait_serving,
)


async def standins(database_url: str) -> dict[str, tuple[bool, str | None]]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT token, approved, result FROM standins")
    finally:
        await connection.close()
    return {row["token"]: (row["approved"], row["result"]) for row in rows}


async def wait_applied(database_url: str, count: int) -> dict[str, tuple[bool, str | None]]:
    for _ in range(200):
        found = await standins(database_url)
        if len(found) == count and all(result for _, result in found.values()):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"stand-ins not applied: {await standins(database_url)}")


async def balance(address: str) -> tuple[int, int]:
    async with grpc.aio.insecure_channel(address) as channel:
        found = await accounts_pb2_grpc.AccountsStub(channel).GetBalance(
            accounts_pb2.GetBalanceRequest(account_token="u1")
        )
    return found.posted.amount_minor, found.held.amount_minor


async def loaded_then_stopped(cluster: Cluster, database_url: str, port: int) -> Served:
    """A decider's database with the program in it, the decider itself stopped."""
    decider = cluster.start("decider", database_url, grpc_port=port)
    await wait_serving(decider)
    async with grpc.aio.insecure_channel(decider.grpc_addr) as channel:
        await program_pb2_grpc.ProgramStub(channel).LoadProgram(
            program_pb2.LoadProgramRequest(document=orjson.dumps(program("5.00")))
        )
    assert decider.terminate() == 0
    return decider


async def replay_answer(address: str, body: bytes) -> jit_pb2.Decision:
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await jit_pb2_grpc.JitStub(channel).Decide(jit_pb2.DecideRequest(raw=body))
    return reply.decision


async def test_standin_answers_are_recorded_and_reconcile_once(
    cluster: Cluster, database_url: str, second_database_url: str
) -> None:
    port = free_port()
    decider = await loaded_then_stopped(cluster, database_url, port)

    edge = cluster.start(
        "edge",
        second_database_url,
        shards=decider.grpc_addr,
        extra_env={
            "PYJIT_EDGE_BUDGET_MS": "300",
            "PYJIT_STANDIN_APPROVE_UP_TO": "25.00",
            "PYJIT_STANDIN_MCCS": "5411,5811-5814",
        },
    )
    await wait_http(edge)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{edge.http_url}/ready") as response:
            assert response.status == 503
            [shard] = orjson.loads(await response.read())["shards"]
            assert shard["health"] != "SERVING"
        # Reconciled first, while the account could pay it: the decider must undo its own
        # approval, since the processor was told no.
        other = await post_jit(session, edge.http_url, jit_body("s-other", "5.00", mcc="7995"))
        small = await post_jit(session, edge.http_url, jit_body("s-small", "10.00", mcc="5411"))
        large = await post_jit(session, edge.http_url, jit_body("s-large", "30.00", mcc="5411"))
        refund = await post_jit(
            session, edge.http_url, jit_body("s-refund", "2.00", method="pgfs.refund")
        )
        repeated = await post_jit(session, edge.http_url, jit_body("s-small", "10.00", mcc="5411"))

    assert small[0] == 200 and repeated == small
    assert orjson.loads(small[1])["jit_funding"]["memo"] == "stand-in"
    for declined in (large, other):
        assert declined[0] == 402
        assert orjson.loads(declined[1])["jit_funding"]["decline_reason"] == (
            "TRANSACTION_NOT_PERMITTED"
        )
    assert refund[0] == 200
    recorded = await standins(second_database_url)
    assert {token: approved for token, (approved, _) in recorded.items()} == {
        "s-small": True,
        "s-large": False,
        "s-other": False,
        "s-refund": True,
    }

    back = cluster.start("decider", database_url, grpc_port=port)
    await wait_serving(back)
    applied = await wait_applied(second_database_url, 4)
    assert {result for _, result in applied.values()} == {"APPLIED"}
    # 5.00 funded plus the 2.00 refund; the stand-in approval holds 10.00 although the
    # account could not cover it: the processor approved it, so the money is spoken for;
    # the declined 5.00 holds nothing.
    assert await balance(back.grpc_addr) == (700, 1000)
    replayed = await replay_answer(back.grpc_addr, jit_body("s-other", "5.00", mcc="7995"))
    assert replayed.replayed and not replayed.approved
    assert replayed.decline_reason == "TRANSACTION_NOT_PERMITTED"

    connection = await asyncpg.connect(second_database_url)
    try:
        await connection.execute("UPDATE standins SET applied_at = NULL, result = NULL")
    finally:
        await connection.close()
    again = await wait_applied(second_database_url, 4)
    assert {result for _, result in again.values()} == {"ALREADY_APPLIED"}
    assert await balance(back.grpc_addr) == (700, 1000)
