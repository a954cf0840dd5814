"""The decider's gRPC server: its services, the standard health service and reflection.

Health says NOT_SERVING until recovery has made the decider and again once a stop begins.
A stop lets calls in flight finish within the grace period (their commits included) while
every call that arrives after it began gets UNAVAILABLE (pyjit/rpc/admission.py), which
callers may retry elsewhere: no decision is left half applied.
"""

import logging
from collections.abc import Callable

import asyncpg
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import Histogram

from pyjit.clock import Clock
from pyjit.config import Address
from pyjit.decider import Decider
from pyjit.rpc.admission import Admission
from pyjit.rpc.jit import JitService
from pyjit.rpc.services import (
    AccountsService,
    CardsService,
    ControlsService,
    Live,
    ProgramService,
)
from pyjit.v1 import (
    accounts_pb2,
    accounts_pb2_grpc,
    cards_pb2,
    cards_pb2_grpc,
    controls_pb2,
    controls_pb2_grpc,
    jit_pb2,
    jit_pb2_grpc,
    program_pb2,
    program_pb2_grpc,
)

log = logging.getLogger(__name__)

SERVICE_NAMES = tuple(
    module.DESCRIPTOR.services_by_name[name].full_name
    for module, name in (
        (jit_pb2, "Jit"),
        (accounts_pb2, "Accounts"),
        (cards_pb2, "Cards"),
        (controls_pb2, "Controls"),
        (program_pb2, "Program"),
    )
)
SERVER_OPTIONS = (
    ("grpc.so_reuseport", 0),
    ("grpc.max_concurrent_streams", 1024),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
)


class DeciderServer:
    """Owns the grpc.aio server of one decider process."""

    def __init__(
        self,
        decider: Callable[[], Decider | None],
        pool: asyncpg.Pool,
        clock: Clock,
        latency: Histogram | None = None,
        token: str = "",
    ) -> None:
        self.admission = Admission(clock, latency, token)
        self.server = grpc.aio.server(interceptors=[self.admission], options=SERVER_OPTIONS)
        live = Live(decider, pool)
        jit_pb2_grpc.add_JitServicer_to_server(JitService(decider, live.currency), self.server)
        accounts_pb2_grpc.add_AccountsServicer_to_server(AccountsService(live), self.server)
        cards_pb2_grpc.add_CardsServicer_to_server(CardsService(live), self.server)
        controls_pb2_grpc.add_ControlsServicer_to_server(ControlsService(live), self.server)
        program_pb2_grpc.add_ProgramServicer_to_server(ProgramService(live), self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.port = 0

    async def start(self, address: Address) -> int:
        """Listen on `address` (port 0 picks one); returns the port."""
        try:
            self.port = self.server.add_insecure_port(str(address))
        except RuntimeError as error:
            # Most often the port is taken; say so as an OSError, as an HTTP bind would.
            raise OSError(f"cannot listen for gRPC on {address}: {error}") from error
        if self.port == 0:
            raise OSError(f"cannot listen for gRPC on {address}")
        await self._set_all(health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.start()
        log.info("gRPC listening on %s:%d", address.host, self.port)
        return self.port

    async def serving(self) -> None:
        await self._set_all(health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace_s: float) -> None:
        """Refuse new calls (UNAVAILABLE) and let calls in flight finish within `grace_s`."""
        await self._set_all(health_pb2.HealthCheckResponse.NOT_SERVING)
        if not await self.admission.drain(grace_s):
            log.warning(
                "%d gRPC calls still running after %.1f s", self.admission.in_flight, grace_s
            )
        await self.server.stop(0.5)

    async def _set_all(self, status: int) -> None:
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, status)
