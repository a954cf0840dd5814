"""Proves a request id crosses processes: the processor's X-Request-Id on an edge's /jit
comes back in the response and appears on the decision line the decider logs after the
gRPC hop; a request without one gets a generated id, the same on both sides. The edge role
serves /metrics too, and a gRPC-only decider answers /health, /ready and /metrics over HTTP
for its probes and scrapes, and nothing else."""

import asyncio

import aiohttp
import orjson

from tests.grpc.cluster import (
    AUTH,
    Cluster,
    jit_body,
    post_program,
    program,
    wait_http,
    wait_serving,
)


async def test_the_request_id_reaches_the_deciders_log(
    cluster: Cluster, database_url: str, second_database_url: str
) -> None:
    decider = cluster.start("decider", database_url)
    edge = cluster.start("edge", second_database_url, shards=decider.grpc_addr)
    await wait_serving(decider)
    await wait_http(edge)
    headers = {"Authorization": AUTH, "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        await post_program(session, edge.http_url, program("50.00"))
        sent = {**headers, "X-Request-Id": "processor-7f3a"}
        async with session.post(f"{edge.http_url}/jit", data=jit_body("rq-1"), headers=sent) as r:
            assert r.status == 200 and r.headers["X-Request-Id"] == "processor-7f3a"
        async with session.post(
            f"{edge.http_url}/jit", data=jit_body("rq-2"), headers=headers
        ) as response:
            generated = response.headers["X-Request-Id"]
        async with session.get(f"{edge.http_url}/metrics") as response:
            assert response.status == 200 and "pyjit_jit_decisions_total" in await response.text()

    lines: dict[object, dict[str, object]] = {}
    for _ in range(100):
        lines = {
            line.get("token"): line
            for line in map(orjson.loads, decider.log().splitlines())
            if line.get("msg") == "decision"
        }
        if {"rq-1", "rq-2"} <= set(lines):
            break
        await asyncio.sleep(0.05)
    assert lines["rq-1"]["request_id"] == "processor-7f3a"
    assert lines["rq-2"]["request_id"] == generated


async def test_a_grpc_only_decider_answers_probes_and_scrapes(
    cluster: Cluster, database_url: str
) -> None:
    decider = cluster.start("decider", database_url)
    await wait_serving(decider)
    await wait_http(decider)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{decider.http_url}/ready") as response:
            ready = orjson.loads(await response.read())
            assert response.status == 200 and ready["checks"]["recovery"]["ok"] is True
        async with session.get(f"{decider.http_url}/metrics") as response:
            text = await response.text()
            assert "pyjit_recovery_seconds_count 1.0" in text
        # Deciding stays on gRPC: the processor's door is the edge's.
        async with session.post(f"{decider.http_url}/jit", data=jit_body("x")) as response:
            assert response.status in (404, 405)
