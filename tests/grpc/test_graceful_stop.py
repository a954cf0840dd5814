"""Stopping a decider (SIGTERM) while calls are in flight: each call either gets its decision,
durable in the journal, or UNAVAILABLE with nothing of it applied; calls made once the stop
has begun get UNAVAILABLE; the process exits cleanly."""

import asyncio
import signal

import grpc
import orjson

from pyjit.v1 import jit_pb2, jit_pb2_grpc, program_pb2, program_pb2_grpc
from tests.grpc.cluster import Cluster, decision_tokens, jit_body, program, wait_serving

CALLS = 400


async def test_stop_finishes_in_flight_calls_and_refuses_later_ones(
    cluster: Cluster, database_url: str
) -> None:
    decider = cluster.start("decider", database_url)
    await wait_serving(decider)
    async with grpc.aio.insecure_channel(decider.grpc_addr) as channel:
        await program_pb2_grpc.ProgramStub(channel).LoadProgram(
            program_pb2.LoadProgramRequest(document=orjson.dumps(program("1000.00")))
        )
        jit = jit_pb2_grpc.JitStub(channel)

        async def call(n: int) -> tuple[str, grpc.StatusCode]:
            token = f"g{n}"
            try:
                await jit.Decide(jit_pb2.DecideRequest(raw=jit_body(token, "1.00")), timeout=20)
            except grpc.aio.AioRpcError as error:
                return token, error.code()
            return token, grpc.StatusCode.OK

        calls = [asyncio.create_task(call(n)) for n in range(CALLS)]
        await asyncio.sleep(0.02)
        decider.process.send_signal(signal.SIGTERM)
        outcomes = dict(await asyncio.gather(*calls))

        await asyncio.sleep(0.2)
        with_stop_begun = await call(CALLS)
    assert decider.process.wait(30) == 0

    assert set(outcomes.values()) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
    answered = {token for token, code in outcomes.items() if code == grpc.StatusCode.OK}
    refused = set(outcomes) - answered
    journaled = await decision_tokens(database_url)
    assert answered and answered <= journaled and not refused & journaled
    assert with_stop_begun[1] == grpc.StatusCode.UNAVAILABLE
