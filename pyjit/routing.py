"""Which decider shard owns an account holder, and the pooled channels that reach it.

A holder's shard is chosen by rendezvous hashing of its token over the shard list's
positions: every edge computes the same owner with no shared state, and adding a shard moves
only the holders the new shard wins. The key is the account holder the processor names in
every JIT message (`gpa_order.jit_funding.business_token`, else `.user_token`), and a card
never changes holder, so all of a card's messages reach one shard (docs/grpc.md).

`PYJIT_SHARDS` lists shards separated by commas; a shard's addresses (primary first, then its
standbys) are separated by `|`: `10.0.0.1:50051|10.0.0.2:50051,10.0.0.3:50051`. A shard's
channel connects to whichever of its addresses listens (a standby listens only once it holds
the shard's writer lease), and gRPC itself retries a call refused as UNAVAILABLE there.
"""

import hashlib
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import orjson
from grpc_health.v1 import health_pb2

from pyjit import logs
from pyjit.v1 import jit_pb2, jit_pb2_grpc, program_pb2, program_pb2_grpc

# Calls wait for a listening address (a standby taking over) and are retried by gRPC when a
# decider refuses them as UNAVAILABLE (it is stopping): deciding is idempotent by token.
SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": "pyjit.v1.Jit"}, {"service": "pyjit.v1.Program"}],
                "waitForReady": True,
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.01s",
                    "maxBackoff": "0.2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)
CHANNEL_OPTIONS = (
    ("grpc.service_config", SERVICE_CONFIG),
    ("grpc.enable_retries", 1),
    # A dead primary must be noticed, and its standby reached, in milliseconds.
    ("grpc.initial_reconnect_backoff_ms", 20),
    ("grpc.min_reconnect_backoff_ms", 20),
    ("grpc.max_reconnect_backoff_ms", 200),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 2_000),
)


class ShardListError(ValueError):
    """A PYJIT_SHARDS value that does not name shards."""


class NoHolder(ValueError):
    """A JIT message that names no account holder, so no shard owns it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Shard:
    index: int
    addresses: tuple[str, ...]

    @property
    def target(self) -> str:
        """A gRPC target that reaches whichever address listens."""
        if len(self.addresses) == 1:
            return self.addresses[0]
        return "ipv4:" + ",".join(self.addresses)


def parse_shards(text: str) -> list[Shard]:
    """Shards from `PYJIT_SHARDS`; several addresses of one shard must be IPv4 literals."""
    shards = []
    for index, part in enumerate(text.split(",")):
        addresses = tuple(address.strip() for address in part.split("|") if address.strip())
        if not addresses:
            raise ShardListError(f"PYJIT_SHARDS: shard {index} has no address")
        for address in addresses:
            host, sep, port = address.rpartition(":")
            if not sep or not port.isdigit() or not host:
                raise ShardListError(f"PYJIT_SHARDS: {address!r} is not HOST:PORT")
            if len(addresses) > 1 and not _is_ipv4(host):
                raise ShardListError(
                    f"PYJIT_SHARDS: shard {index} lists several addresses; "
                    f"each must be an IPv4 literal, got {host!r}"
                )
        shards.append(Shard(index, addresses))
    return shards


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def owner(holder_token: str, shard_count: int) -> int:
    """The shard position that owns `holder_token`: the highest hash of (position, holder)."""
    assert shard_count > 0, "a shard list is never empty"
    key = holder_token.encode()

    def weight(index: int) -> int:
        digest = hashlib.blake2b(key, digest_size=8, person=index.to_bytes(8, "big"))
        return int.from_bytes(digest.digest(), "big")

    return max(range(shard_count), key=weight)


def funding_of(document: Any) -> dict[str, Any]:
    """The `jit_funding` object of a parsed JIT message (`gpa_order` or, for money going
    back, `gpa_order_unload`); raises `NoHolder` when there is none."""
    if not isinstance(document, dict):
        raise NoHolder("$", "the body is not a JSON object")
    order = document.get("gpa_order") or document.get("gpa_order_unload")
    funding = order.get("jit_funding") if isinstance(order, dict) else None
    if not isinstance(funding, dict):
        raise NoHolder("gpa_order.jit_funding", "missing")
    return funding


def holder_of(document: Any) -> str:
    """The account holder a parsed JIT message names; raises `NoHolder`."""
    funding = funding_of(document)
    for name in ("business_token", "user_token"):
        token = funding.get(name)
        if isinstance(token, str) and token:
            return token
    raise NoHolder("gpa_order.jit_funding.user_token", "no account holder token")


def split_program(document: bytes, shard_count: int) -> list[bytes]:
    """The program file each shard loads: everything, except that a GPA order goes only to
    the shard that owns its holder, so an account's money lives in one shard."""
    program = orjson.loads(document)
    if not isinstance(program, dict) or not isinstance(program.get("gpaorders", []), list):
        return [document] * shard_count
    orders = program.pop("gpaorders", [])
    parts = []
    for index in range(shard_count):
        mine = [order for order in orders if _order_owner(order, shard_count) in (index, None)]
        parts.append(orjson.dumps({**program, "gpaorders": mine} if mine else program))
    return parts


def _order_owner(order: Any, shard_count: int) -> int | None:
    if not isinstance(order, dict):
        return None
    holder = order.get("business_token") or order.get("user_token")
    return owner(holder, shard_count) if isinstance(holder, str) and holder else None


class Router:
    """One pooled channel per shard; HTTP/2 multiplexes every call of an edge over it."""

    def __init__(self, shards: Sequence[Shard], token: str = "") -> None:
        assert shards, "a router needs at least one shard"
        self.shards = list(shards)
        # Sent on every call: the deciders' PYJIT_GRPC_TOKEN, when they require one.
        self.metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        self._channels = [
            grpc.aio.insecure_channel(shard.target, options=CHANNEL_OPTIONS) for shard in shards
        ]
        self.jit = [jit_pb2_grpc.JitStub(channel) for channel in self._channels]
        self.program = [program_pb2_grpc.ProgramStub(channel) for channel in self._channels]
        self._health = [
            channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )
            for channel in self._channels
        ]

    def shard_for(self, holder_token: str) -> int:
        return owner(holder_token, len(self.shards))

    async def decide(self, shard: int, body: bytes, timeout_s: float) -> jit_pb2.DecideResponse:
        # The edge's request id travels with the message into the decider's log lines.
        request = jit_pb2.DecideRequest(raw=body, request_id=logs.request_id.get() or "")
        return await self.jit[shard].Decide(request, timeout=timeout_s, metadata=self.metadata)

    async def load_program(self, document: bytes, timeout_s: float) -> list[int]:
        """Load a program file on every shard (GPA orders on their owners); entries each."""
        loaded = []
        for shard, part in enumerate(split_program(document, len(self.shards))):
            request = program_pb2.LoadProgramRequest(document=part)
            response = await self.program[shard].LoadProgram(
                request, timeout=timeout_s, metadata=self.metadata
            )
            loaded.append(response.entries)
        return loaded

    async def serving(self, shard: int, timeout_s: float = 1.0) -> str:
        """The shard's health: SERVING, NOT_SERVING, or the gRPC code that stopped the check."""
        request = health_pb2.HealthCheckRequest(service="pyjit.v1.Jit")
        try:
            reply = await self._health[shard](request, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            return str(error.code().name)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()
