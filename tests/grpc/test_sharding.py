"""Two edges in front of two decider shards, under concurrent load: every holder's messages
reach the one shard that owns it (whichever edge they enter by), each account is decided by
one writer, so no account approves more than it holds, and the other shard never sees the
holder's decisions or money."""

import asyncio
import itertools

import aiohttp
import grpc
import orjson

from pyjit.routing import owner
from pyjit.v1 import accounts_pb2, accounts_pb2_grpc
from tests.grpc.cluster import (
    Cluster,
    decision_tokens,
    jit_body,
    post_jit,
    post_program,
    program,
    wait_http,
    wait_serving,
)

USERS = 8
TRIES = 30


async def test_two_shards_keep_one_writer_per_account(
    cluster: Cluster, database_url: str, second_database_url: str, third_database_url: str
) -> None:
    shard_urls = [database_url, second_database_url]
    deciders = [cluster.start("decider", url) for url in shard_urls]
    shards = ",".join(decider.grpc_addr for decider in deciders)
    edges = [cluster.start("edge", third_database_url, shards=shards) for _ in range(2)]
    await asyncio.gather(*(wait_serving(d) for d in deciders), *(wait_http(e) for e in edges))
    owners = {f"u{n}": owner(f"u{n}", 2) for n in range(1, USERS + 1)}
    assert set(owners.values()) == {0, 1}, "the sample must spread over both shards"

    async with aiohttp.ClientSession() as session:
        await post_program(session, edges[0].http_url, program("10.00", users=USERS))
        sends = [
            post_jit(
                session, edge.http_url, jit_body(f"t{n}-{i}", "1.00", card=f"c{n}", user=f"u{n}")
            )
            for (n, i), edge in zip(
                itertools.product(range(1, USERS + 1), range(TRIES)), itertools.cycle(edges)
            )
        ]
        answers = await asyncio.gather(*sends)
        again = await post_jit(session, edges[1].http_url, jit_body("t1-0", "1.00"))

    approved = {f"u{n}": 0 for n in range(1, USERS + 1)}
    for status, body in answers:
        funding = orjson.loads(body)["jit_funding"]
        assert status in (200, 402) and funding.get("memo") != "stand-in"
        approved[funding["user_token"]] += status == 200
    assert approved == {holder: 10 for holder in approved}
    assert again == answers[0]

    recorded = [await decision_tokens(url) for url in shard_urls]
    for holder, shard in owners.items():
        n = holder[1:]
        mine = {f"t{n}-{i}" for i in range(TRIES)}
        assert mine <= recorded[shard] and not mine & recorded[1 - shard]

    for shard, decider in enumerate(deciders):
        async with grpc.aio.insecure_channel(decider.grpc_addr) as channel:
            accounts = accounts_pb2_grpc.AccountsStub(channel)
            for holder, owning in owners.items():
                balance = await accounts.GetBalance(
                    accounts_pb2.GetBalanceRequest(account_token=holder)
                )
                expected = 1000 if owning == shard else 0
                assert balance.posted.amount_minor == expected
                assert balance.held.amount_minor == expected
