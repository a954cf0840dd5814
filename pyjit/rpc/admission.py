"""Admission of gRPC calls: check the caller's token, refuse new calls once a stop begins,
let admitted ones finish, and time every call by method and status.

grpc.aio's own `stop(grace)` cancels calls it has accepted but not yet handed to a servicer;
a caller sees CANCELLED, which no retry policy retries. Closing admission first turns those
into UNAVAILABLE (retryable, nothing applied) and lets the stop wait for exactly the calls a
servicer is running.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import Histogram

from pyjit.clock import Clock
from pyjit.rpc.errors import RpcRefusal, status_of

Context = grpc.aio.ServicerContext[Any, Any]
# After the last admitted call, calls already received keep reaching the servicers for a
# moment; the stop waits until none has arrived for this long, so each is refused cleanly.
QUIET_S = 0.1
# Health and reflection answer through a stop, so probes see NOT_SERVING rather than errors.
ALWAYS_ADMITTED = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class Admission(grpc.aio.ServerInterceptor):
    def __init__(self, clock: Clock, latency: Histogram | None = None, token: str = "") -> None:
        self._clock = clock
        # With a token set, every call but health and reflection must present it.
        self._expected = f"Bearer {token}".encode() if token else None
        self._latency = latency
        self._open = True
        self._in_flight = 0
        self._refused = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def drain(self, grace_s: float) -> bool:
        """Refuse new calls; True if every admitted call finished within `grace_s`."""
        self._open = False
        try:
            async with asyncio.timeout(grace_s):
                while True:
                    await self._idle.wait()
                    refused = self._refused
                    await asyncio.sleep(QUIET_S)
                    if self._idle.is_set() and refused == self._refused:
                        return True
        except TimeoutError:
            return False

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(ALWAYS_ADMITTED):
            return handler
        name = method.rsplit("/", 1)[-1]
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, name),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._stream(handler.stream_stream, name),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _unary(self, behavior: Any, name: str) -> Any:
        async def admitted(request: Any, context: Context) -> Any:
            await self._admit(context)
            started_ns = self._enter()
            status = "UNKNOWN"
            try:
                response = await behavior(request, context)
                status = "OK"
                return response
            except BaseException:
                status = _code_name(context)
                raise
            finally:
                self._leave(name, status, started_ns)

        return admitted

    def _stream(self, behavior: Any, name: str) -> Any:
        async def admitted(requests: Any, context: Context) -> AsyncIterator[Any]:
            await self._admit(context)
            started_ns = self._enter()
            status = "UNKNOWN"
            try:
                async for response in behavior(requests, context):
                    yield response
                status = "OK"
            except BaseException:
                status = _code_name(context)
                raise
            finally:
                self._leave(name, status, started_ns)

        return admitted

    async def _admit(self, context: Context) -> None:
        if self._expected is not None and not self._authorized(context):
            refusal = RpcRefusal(
                grpc.StatusCode.UNAUTHENTICATED,
                "UNAUTHENTICATED",
                "missing or wrong authorization metadata (Bearer PYJIT_GRPC_TOKEN)",
            )
            status = status_of(refusal)
            await context.abort(status.code, status.details, status.trailing_metadata)
        if not self._open:
            self._refused += 1
            refusal = RpcRefusal(grpc.StatusCode.UNAVAILABLE, "STOPPING", "decider is stopping")
            status = status_of(refusal)
            await context.abort(status.code, status.details, status.trailing_metadata)

    def _authorized(self, context: Context) -> bool:
        assert self._expected is not None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                presented = value.encode() if isinstance(value, str) else value
                return hmac.compare_digest(presented, self._expected)
        return False

    def _enter(self) -> int:
        self._in_flight += 1
        self._idle.clear()
        return self._clock.monotonic_ns()

    def _leave(self, name: str, status: str, started_ns: int) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()
        if self._latency is not None:
            seconds = (self._clock.monotonic_ns() - started_ns) / 1e9
            self._latency.labels(name, status).observe(seconds)


def _code_name(context: Context) -> str:
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "CANCELLED"
