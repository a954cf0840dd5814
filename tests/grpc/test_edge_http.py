"""The edge's HTTP face: bad input gets the same precise 4xx as the all-in-one gateway, the
field named, whether the edge finds the fault itself (no JSON, no holder) or the decider
behind it does (an amount with too many decimals, a reused token, a bad program). The
decider here requires a gRPC token, which the edge presents and a bare caller lacks."""

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import grpc
import orjson
import pytest

from pyjit.v1 import jit_pb2, jit_pb2_grpc
from tests.grpc.cluster import (
    AUTH,
    Cluster,
    Served,
    jit_body,
    post_jit,
    post_program,
    program,
    wait_http,
    wait_serving,
)

TOKEN = "grpc-test-token-0123456789"


@pytest.fixture
async def decider(cluster: Cluster, database_url: str) -> Served:
    return cluster.start("decider", database_url, extra_env={"PYJIT_GRPC_TOKEN": TOKEN})


@pytest.fixture
async def edge(cluster: Cluster, decider: Served, second_database_url: str) -> Served:
    started = cluster.start(
        "edge",
        second_database_url,
        shards=decider.grpc_addr,
        extra_env={"PYJIT_GRPC_TOKEN": TOKEN},
    )
    await wait_serving(decider)
    await wait_http(started)
    async with aiohttp.ClientSession() as session:
        await post_program(session, started.http_url, program("50.00"))
    return started


def without_holder() -> bytes:
    document = orjson.loads(jit_body("n1"))
    del document["gpa_order"]["jit_funding"]["user_token"]
    return orjson.dumps(document)


async def test_bad_input_is_refused_with_the_field_named(edge: Served) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{edge.http_url}/ready") as response:
            payload = orjson.loads(await response.read())
            assert response.status == 200 and payload["shards"][0]["health"] == "SERVING"
        assert (await post_jit(session, edge.http_url, jit_body("a1"), auth="Basic eDp5"))[0] == 401
        cases = [
            (b"{not json", 400, "$"),
            (without_holder(), 400, "gpa_order.jit_funding.user_token"),
            (jit_body("a2", "1.001"), 400, "gpa_order.jit_funding.amount"),
        ]
        for body, status, field in cases:
            answer = await post_jit(session, edge.http_url, body)
            assert (answer[0], orjson.loads(answer[1])["field"]) == (status, field)

        assert (await post_jit(session, edge.http_url, jit_body("a3", "2.00")))[0] == 200
        # A body that arrives in small chunks is read whole, not cut at its first chunk.
        whole = jit_body("a4", "2.00")

        async def trickle() -> AsyncIterator[bytes]:
            for start in range(0, len(whole), 64):
                yield whole[start : start + 64]
                await asyncio.sleep(0.001)

        headers = {"Authorization": AUTH, "Content-Type": "application/json"}
        async with session.post(f"{edge.http_url}/jit", data=trickle(), headers=headers) as sent:
            assert sent.status == 200, await sent.read()
        reused = await post_jit(session, edge.http_url, jit_body("a3", "3.00"))
        assert reused[0] == 409

        bad = {"cards": [{"token": "c7", "user_token": "nobody", "card_product_token": "p1"}]}
        async with session.post(
            f"{edge.http_url}/admin/program",
            data=orjson.dumps(bad),
            headers={"Authorization": "Basic " + "eDp5"},
        ) as response:
            assert response.status == 401
        async with session.post(
            f"{edge.http_url}/admin/program",
            data=orjson.dumps(bad),
            headers={"Authorization": AUTH},
        ) as response:
            payload = orjson.loads(await response.read())
            assert response.status == 400 and payload["field"] == "cards[0].user_token"


async def test_the_decider_refuses_calls_without_its_token(edge: Served, decider: Served) -> None:
    request = jit_pb2.DecideRequest(raw=jit_body("z1"))
    async with grpc.aio.insecure_channel(decider.grpc_addr) as channel:
        jit = jit_pb2_grpc.JitStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await jit.Decide(request)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await jit.Decide(request, metadata=(("authorization", "Bearer wrong"),))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED

        reply = await jit.Decide(request, metadata=(("authorization", f"Bearer {TOKEN}"),))
        assert reply.decision.approved
