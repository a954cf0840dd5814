"""The `pyjit.v1.Jit` service: decisions through the decider, unary and streaming."""

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from pyjit import logs
from pyjit._engine import MessageError, TokenConflict
from pyjit.decider import Answer, Decider
from pyjit.fields import refusal_of
from pyjit.rpc.convert import currency_of, decision_of, request_body
from pyjit.rpc.errors import RpcRefusal, abort, invalid, unavailable
from pyjit.standin import ApplyResult, apply_standin
from pyjit.v1 import jit_pb2, jit_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]

# Batches in flight on one stream: enough for the journal's group commit to fill its
# commits, bounded so a fast sender cannot queue unbounded work in the decider.
STREAM_BATCHES_IN_FLIGHT = 64
STANDIN_COMMIT_TIMEOUT_S = 5.0


class JitService(jit_pb2_grpc.JitServicer):
    def __init__(self, decider: Callable[[], Decider | None], currency: Callable[[], str]) -> None:
        self._decider = decider
        # The program's currency, in which the engine states every amount it answers.
        self._currency = currency

    def _live(self) -> Decider:
        decider = self._decider()
        if decider is None:
            raise unavailable("recovering, not ready to decide")
        return decider

    async def Decide(
        self, request: jit_pb2.DecideRequest, context: Context
    ) -> jit_pb2.DecideResponse:
        try:
            return await self._decide_one(request)
        except RpcRefusal as refusal:
            await abort(context, refusal)
            raise

    async def DecideStream(
        self, request_iterator: AsyncIterator[jit_pb2.DecideBatch], context: Context
    ) -> AsyncIterator[jit_pb2.DecideBatchReply]:
        replies: asyncio.Queue[jit_pb2.DecideBatchReply | None] = asyncio.Queue()
        reader = asyncio.create_task(self._read_stream(request_iterator, replies))
        try:
            while (reply := await replies.get()) is not None:
                yield reply
            await reader
        finally:
            reader.cancel()

    async def _read_stream(
        self,
        batches: AsyncIterator[jit_pb2.DecideBatch],
        replies: "asyncio.Queue[jit_pb2.DecideBatchReply | None]",
    ) -> None:
        room = asyncio.Semaphore(STREAM_BATCHES_IN_FLIGHT)
        running: set[asyncio.Task[None]] = set()

        async def one(batch: jit_pb2.DecideBatch) -> None:
            try:
                requests = batch.requests
                if len(requests) == 1:
                    # The common single-message frame: no second task for one decision.
                    answers = [await self._answer_or_error(requests[0])]
                else:
                    answers = await asyncio.gather(*map(self._answer_or_error, requests))
                replies.put_nowait(jit_pb2.DecideBatchReply(responses=answers))
            finally:
                room.release()

        try:
            async for batch in batches:
                await room.acquire()
                task = asyncio.create_task(one(batch))
                running.add(task)
                task.add_done_callback(running.discard)
            await asyncio.gather(*running)
        finally:
            replies.put_nowait(None)

    async def _answer_or_error(self, request: jit_pb2.DecideRequest) -> jit_pb2.DecideResponse:
        try:
            return await self._decide_one(request)
        except RpcRefusal as refusal:
            return jit_pb2.DecideResponse(
                request_id=request.request_id,
                error_code=refusal.code.value[0],
                error_message=refusal.message,
                error_field=refusal.field or "",
            )

    async def _decide_one(self, request: jit_pb2.DecideRequest) -> jit_pb2.DecideResponse:
        # Each call and each stream item runs in its own task: the id stays with its message.
        logs.request_id.set(logs.accept_request_id(request.request_id or None))
        decider = self._live()
        received_ns = decider.clock.monotonic_ns()
        body = request_body(request)

        answer = await decide_or_refuse(decider, body, received_ns)
        decision = decision_of(answer, self._currency())
        return jit_pb2.DecideResponse(request_id=request.request_id, decision=decision)

    async def ApplyStandIn(
        self, request: jit_pb2.ApplyStandInRequest, context: Context
    ) -> jit_pb2.ApplyStandInResponse:
        try:
            decider = self._live()
            if not request.raw:
                raise invalid("raw", "empty message")
            try:
                result, answer = await apply_standin(
                    decider, request.raw, request.approved, STANDIN_COMMIT_TIMEOUT_S
                )
            except (MessageError, TokenConflict) as error:
                field, problem = refusal_of(error, request.raw)
                raise invalid(f"raw.{field}", problem) from error
        except RpcRefusal as refusal:
            await abort(context, refusal)
            raise
        return jit_pb2.ApplyStandInResponse(
            result=RESULTS[result], decision=decision_of(answer, currency_of(request.raw))
        )


RESULTS = {
    ApplyResult.APPLIED: jit_pb2.ApplyStandInResponse.APPLIED,
    ApplyResult.ALREADY_APPLIED: jit_pb2.ApplyStandInResponse.ALREADY_APPLIED,
    ApplyResult.CONFLICT: jit_pb2.ApplyStandInResponse.CONFLICT,
}


async def decide_or_refuse(decider: Decider, body: bytes, received_ns: int) -> Answer:
    """The decider's answer, or the refusal naming the field the engine found wrong."""
    try:
        return await decider.decide(body, received_ns)
    except TokenConflict as error:
        raise RpcRefusal(
            grpc.StatusCode.ALREADY_EXISTS, "TOKEN_CONFLICT", str(error), error.field
        ) from error
    except MessageError as error:
        field, problem = refusal_of(error, body)
        raise invalid(field, problem) from error
