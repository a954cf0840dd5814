"""The edge role's HTTP app: the processor's /jit, forwarded to the owning decider.

An edge keeps no state of its own: it reads the account holder from the message, sends the
raw body to that holder's shard over the shard's pooled channel with the edge's budget as
the deadline, and relays the decider's status and body. When the shard cannot answer in
time it answers by the stand-in policy, after committing that answer (pyjit/standin.py).
"""

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import grpc
import orjson
from aiohttp import web

from pyjit import logs, metrics
from pyjit.clock import Clock
from pyjit.config import Config
from pyjit.edge import (
    JIT_BODY_MAX,
    BodyRefused,
    _authorized,
    _unauthorized,
    basic_header,
    json_response,
    program_body,
    read_at_most,
)
from pyjit.routing import NoHolder, Router, holder_of
from pyjit.rpc.errors import detail_of
from pyjit.standin import StandInPolicy, parse_exact, record
from pyjit.v1 import jit_pb2
from pyjit.webhooks_runtime import install_intake

log = logging.getLogger(__name__)

ADMIN_BODY_MAX = 64 * 1024 * 1024
PROGRAM_TIMEOUT_S = 60.0
# Short: a shard that is still away holds up the stand-ins queued behind its own.
DELIVERY_TIMEOUT_S = 2.0
JSON = "application/json"
# Codes that mean "the decider did not decide this in time": answer by stand-in.
STAND_IN_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
HTTP_OF = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.ALREADY_EXISTS: 409,
}


@dataclass
class EdgeState:
    config: Config
    clock: Clock
    pool: asyncpg.Pool
    router: Router
    policy: StandInPolicy
    counts: dict[str, int] = field(default_factory=lambda: {"forwarded": 0, "stand_in": 0})


EDGE = web.AppKey("edge", EdgeState)


def build_edge_app(state: EdgeState) -> web.Application:
    app = web.Application(client_max_size=ADMIN_BODY_MAX, middlewares=[logs.request_ids])
    app[EDGE] = state
    metrics.mount(app)
    gateway = basic_header(state.config.gateway_username, state.config.gateway_password)
    admin = basic_header(*state.config.admin_credentials)
    app.router.add_post("/jit", _jit_handler(state, gateway))
    app.router.add_get("/health", _health)
    app.router.add_get("/ready", _ready)
    app.router.add_post("/admin/program", _program_handler(state, admin))
    # The processor's webhooks are taken here too; `--role worker` consumes them.
    install_intake(app, state.config, state.clock, state.pool, state.config.database_url, {})
    return app


async def _health(request: web.Request) -> web.Response:
    state = request.app[EDGE]
    return json_response(200, {"status": "alive", "role": "edge", **state.counts})


async def _ready(request: web.Request) -> web.Response:
    """Ready when every shard's decider says SERVING: a shard that is away would make this
    edge answer its holders by stand-in."""
    router = request.app[EDGE].router
    found = await asyncio.gather(*(router.serving(index) for index in range(len(router.shards))))
    shards = [
        {"shard": shard.index, "addresses": list(shard.addresses), "health": health}
        for shard, health in zip(router.shards, found, strict=True)
    ]
    ready = all(health == "SERVING" for health in found)
    return json_response(200 if ready else 503, {"ready": ready, "shards": shards})


def _jit_handler(state: EdgeState, expected: bytes) -> Any:
    budget_s = state.config.edge_budget_ms / 1000

    async def jit(request: web.Request) -> web.Response:
        if not _authorized(request, expected):
            logs.log_rejected(None, "Authorization", "missing or wrong Basic credentials", 401)
            return _unauthorized()
        try:
            body = await read_at_most(request, JIT_BODY_MAX)
        except BodyRefused as refused:
            return _refused(None, "body", str(refused), refused.status)
        if body is None:
            return _refused(None, "body", f"body over {JIT_BODY_MAX} bytes", 400)
        try:
            holder = holder_of(orjson.loads(body))
        except orjson.JSONDecodeError as error:
            return _refused(None, "$", f"not JSON: {error}", 400)
        except NoHolder as error:
            return _refused(None, error.field, str(error), 400)

        shard = state.router.shard_for(holder)
        try:
            response = await state.router.decide(shard, body, budget_s)
        except grpc.aio.AioRpcError as error:
            if error.code() in STAND_IN_CODES:
                return await _stand_in(state, holder, body, error)
            detail = detail_of(error)
            return _refused(
                None, detail.field or "$", detail.message, HTTP_OF.get(error.code(), 500)
            )
        state.counts["forwarded"] += 1
        decision = response.decision
        return web.Response(status=decision.http_status, body=decision.body, content_type=JSON)

    return jit


def _refused(token: str | None, field_path: str, message: str, status: int) -> web.Response:
    logs.log_rejected(token, field_path, message, status)
    return json_response(status, {"error": message, "field": field_path})


async def _stand_in(
    state: EdgeState, holder: str, body: bytes, error: grpc.aio.AioRpcError
) -> web.Response:
    """Answer by policy, durably; if even that cannot be recorded, answer 503, which the
    processor treats as a decline (no approval is ever given that we do not know of)."""
    document = parse_exact(body)
    approved, answer = state.policy.answer(document)
    try:
        status, answer = await record(state.pool, holder, document, approved, answer, body)
    except (OSError, asyncpg.PostgresError) as failure:
        log.error("stand-in not recorded, answering 503: %r", failure)
        return json_response(503, {"error": "decider and stand-in store unavailable"})
    state.counts["stand_in"] += 1
    log.warning("stand-in answer %d for holder %s: decider %s", status, holder, error.code().name)
    return web.Response(status=status, body=answer, content_type=JSON)


def _program_handler(state: EdgeState, expected: bytes) -> Any:
    async def load(request: web.Request) -> web.Response:
        if not _authorized(request, expected):
            return _unauthorized()
        document = await program_body(request)
        if isinstance(document, web.Response):
            return document
        try:
            entries = await state.router.load_program(document, PROGRAM_TIMEOUT_S)
        except grpc.aio.AioRpcError as error:
            detail = detail_of(error)
            status = 400 if error.code() == grpc.StatusCode.INVALID_ARGUMENT else 503
            return json_response(status, {"error": detail.message, "field": detail.field})
        return json_response(200, {"entries": sum(entries), "per_shard": entries})

    return load


async def deliver_standin(router: Router, holder: str, message: bytes, approved: bool) -> str:
    """Hand one recorded stand-in to its owning decider; the result's name."""
    shard = router.shard_for(holder)
    request = jit_pb2.ApplyStandInRequest(raw=message, approved=approved)
    response = await router.jit[shard].ApplyStandIn(
        request, timeout=DELIVERY_TIMEOUT_S, metadata=router.metadata
    )
    return jit_pb2.ApplyStandInResponse.Result.Name(response.result)
