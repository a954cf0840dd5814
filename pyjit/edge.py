"""The HTTP edge: the processor's JIT endpoint, health and readiness, and admin endpoints."""

import asyncio
import base64
import hmac
import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from pyjit import health, logs, reconciliation
from pyjit import metrics as metrics_module
from pyjit._engine import MessageError, ProgramError, TokenConflict
from pyjit.clock import Clock
from pyjit.config import Config
from pyjit.decider import PROGRAM_BODY_MAX, Decider, NotDurable, ProgramTooLarge
from pyjit.fields import refusal_of
from pyjit.metrics import Metrics
from pyjit.recovery import RecoveryReport
from pyjit.snapshots import store as store_snapshot

log = logging.getLogger(__name__)

JIT_BODY_MAX = 64 * 1024
# A body still arriving after this holds a connection for nothing: the processor has given
# up on the answer long before.
BODY_READ_TIMEOUT_S = 10.0
ADMIN_BODY_MAX = 64 * 1024 * 1024
PROGRAM_COMMIT_TIMEOUT_S = 30.0
JSON = "application/json"


@dataclass
class ServerState:
    """What the handlers share; `decider` is None until recovery has finished."""

    config: Config
    clock: Clock
    pool: asyncpg.Pool
    decider: Decider | None = None
    recovery: RecoveryReport | None = None
    snapshots_taken: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    readiness: health.Readiness = field(init=False)

    def __post_init__(self) -> None:
        self.readiness = health.Readiness(self.clock)


def basic_header(username: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{username}:{password}".encode())


def json_response(status: int, payload: object) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload), content_type=JSON)


def build_app(state: ServerState) -> web.Application:
    app = web.Application(client_max_size=ADMIN_BODY_MAX, middlewares=[logs.request_ids])
    app[STATE] = state
    _register_probes(state)
    app.on_cleanup.append(lambda _app: state.readiness.close())
    gateway = basic_header(state.config.gateway_username, state.config.gateway_password)
    admin = basic_header(*state.config.admin_credentials)
    app.router.add_post("/jit", _jit_handler(state, gateway))
    app.router.add_get("/health", _health)
    app.router.add_get("/ready", _ready)
    metrics_module.mount(app, state.metrics)
    app.router.add_post("/admin/program", _guarded(admin, _load_program))
    app.router.add_get("/admin/reconciliation", _guarded(admin, _reconciliation))
    app.router.add_post("/admin/snapshot", _guarded(admin, _snapshot))
    return app


STATE = web.AppKey("state", ServerState)


def build_ops_app(state: ServerState) -> web.Application:
    """/health, /ready and /metrics alone: the HTTP face of a role that decides over gRPC
    only, for its probes and its scrapes."""
    app = web.Application(middlewares=[logs.request_ids])
    app[STATE] = state
    _register_probes(state)
    app.on_cleanup.append(lambda _app: state.readiness.close())
    app.router.add_get("/health", _health)
    app.router.add_get("/ready", _ready)
    metrics_module.mount(app, state.metrics)
    return app


def _authorized(request: web.Request, expected: bytes) -> bool:
    presented = request.headers.get("Authorization", "").encode("latin-1", "replace")
    # The scheme name is case-insensitive (RFC 7617); the credentials are not.
    scheme, _, credentials = presented.partition(b" ")
    return scheme.lower() == b"basic" and hmac.compare_digest(
        b"Basic " + credentials.strip(), expected
    )


def _unauthorized() -> web.Response:
    response = json_response(401, {"error": "missing or wrong Basic credentials"})
    response.headers["WWW-Authenticate"] = 'Basic realm="pyjit"'
    return response


def _jit_handler(state: ServerState, expected: bytes) -> Any:
    clock = state.clock
    recorder = state.metrics.decision_metrics()
    rejected = state.metrics.rejected

    async def jit(request: web.Request) -> web.Response:
        received_ns = clock.monotonic_ns()
        if not _authorized(request, expected):
            logs.log_rejected(None, "Authorization", "missing or wrong Basic credentials", 401)
            rejected.labels("401").inc()
            return _unauthorized()
        decider = state.decider
        if decider is None:
            rejected.labels("503").inc()
            return json_response(503, {"error": "recovering, not ready to decide"})
        try:
            body = await read_at_most(request, JIT_BODY_MAX)
        except BodyRefused as refused:
            return _bad_input(b"", "body", str(refused), refused.status, rejected)
        if body is None:
            return _bad_input(b"", "body", f"body over {JIT_BODY_MAX} bytes", 400, rejected)
        recorder.parsed(clock.monotonic_ns() - received_ns)

        try:
            answer = await decider.decide(body, received_ns)
        except TokenConflict as error:
            return _bad_input(body, error.field, str(error), 409, rejected)
        except MessageError as error:
            field_path, problem = refusal_of(error, body)
            return _bad_input(body, field_path, f"{field_path}: {problem}", 400, rejected)

        # The decider counted and logged the decision.
        return web.Response(status=answer.status, body=answer.body, content_type=JSON)

    return jit


class BodyRefused(ValueError):
    """A body refused before it was read: `status` and the reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_at_most(request: web.Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to be longer than `limit`: a chunked body
    declares no length, and must not be buffered up to the admin endpoints' limit. Raises
    `BodyRefused` for a compressed body or one that does not arrive in time."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding != "identity":
        # Inflating happens before any limit can see the size: 63 KB of gzip held the loop
        # for half a second inflating 65 MB. The processor sends plain JSON.
        raise BodyRefused(415, f"Content-Encoding {encoding} is not accepted")
    try:
        async with asyncio.timeout(BODY_READ_TIMEOUT_S):
            return await _read_limited(request, limit)
    except TimeoutError as error:
        raise BodyRefused(408, f"body not received within {BODY_READ_TIMEOUT_S:g} s") from error


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    length = request.content_length
    if length is not None:
        return None if length > limit else await request.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _bad_input(
    body: bytes, field_path: str, message: str, status: int, rejected: Any
) -> web.Response:
    logs.log_rejected(_token_of(body), field_path, message, status)
    rejected.labels(str(status)).inc()
    return json_response(status, {"error": message, "field": field_path})


def _token_of(body: bytes) -> str | None:
    """The JIT token of a rejected body, if it can be found, for the log line only."""
    try:
        token = orjson.loads(body)["gpa_order"]["jit_funding"]["token"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return token if isinstance(token, str) else None


def _guarded(expected: bytes, handler: Any) -> Any:
    async def guarded(request: web.Request) -> web.StreamResponse:
        if not _authorized(request, expected):
            return _unauthorized()
        state = request.app[STATE]
        if state.decider is None:
            return json_response(503, {"error": "recovering, not ready"})
        response: web.StreamResponse = await handler(request, state, state.decider)
        return response

    return guarded


async def _health(request: web.Request) -> web.Response:
    return json_response(200, {"status": "alive"})


async def _ready(request: web.Request) -> web.Response:
    state = request.app[STATE]
    ready, checks = await state.readiness.check()
    state.metrics.ready.set(1 if ready else 0)
    return json_response(200 if ready else 503, {"ready": ready, "checks": checks})


def _register_probes(state: ServerState) -> None:
    """The gateway's dependencies: its journal, its recovery and (once live) its writer and
    projector, and Redis and RabbitMQ when they are configured."""
    readiness = state.readiness
    health.add_postgres(readiness, "journal", state.pool)
    readiness.add("recovery", lambda: _recovery_check(state))
    readiness.add("writer", lambda: _writer_check(state))
    readiness.add("projector", lambda: _projector_check(state))
    if state.config.redis_url:
        health.add_redis(readiness, state.config.redis_url)
    if state.config.rabbitmq_url:
        health.add_rabbitmq(readiness, state.config.rabbitmq_url)


async def _recovery_check(state: ServerState) -> dict[str, object]:
    recovery = state.recovery
    return {
        "ok": state.decider is not None,
        "last_seq": recovery.last_seq if recovery else None,
        "entries_applied": recovery.entries_applied if recovery else None,
        "entries_per_second": round(recovery.entries_per_second) if recovery else None,
        "seconds": round(recovery.seconds, 3) if recovery else None,
        "snapshot_seconds": round(recovery.snapshot_seconds, 3) if recovery else None,
    }


async def _writer_check(state: ServerState) -> dict[str, object]:
    if state.decider is None:
        return {"ok": False, "error": "recovering"}
    writer = state.decider.writer
    return {"ok": writer.healthy, "backlog": writer.backlog, "committed_seq": writer.committed_seq}


async def _projector_check(state: ServerState) -> dict[str, object]:
    if state.decider is None:
        return {"ok": False, "error": "recovering"}
    projector = state.decider.writer.projector
    return {
        "ok": projector.healthy,
        "backlog": projector.backlog,
        "projected_seq": projector.projected_seq,
    }


async def _load_program(request: web.Request, state: ServerState, decider: Decider) -> web.Response:
    body = await program_body(request)
    if isinstance(body, web.Response):
        return body
    try:
        entries = await decider.load_program(body, PROGRAM_COMMIT_TIMEOUT_S)
    except ProgramTooLarge as error:
        return program_too_large(error)
    except ProgramError as error:
        problems = [{"path": path, "message": message} for path, message in error.problems]
        log.warning("program rejected with %d problems", len(problems))
        return json_response(400, {"error": "program rejected", "problems": problems})
    except NotDurable as error:
        return json_response(503, {"error": str(error)})
    log.info("program loaded: %d journal entries", entries)
    return json_response(200, {"entries": entries, "last_seq": decider.engine.last_seq})


async def program_body(request: web.Request) -> bytes | web.Response:
    """A program file's body, or the answer that refuses it unread (compressed, too slow,
    over one load)."""
    try:
        body = await read_at_most(request, PROGRAM_BODY_MAX)
    except BodyRefused as refused:
        return json_response(refused.status, {"error": str(refused)})
    return program_too_large(ProgramTooLarge()) if body is None else body


def program_too_large(error: ProgramTooLarge) -> web.Response:
    return json_response(413, {"error": str(error), "limit_bytes": PROGRAM_BODY_MAX})


async def _reconciliation(
    request: web.Request, state: ServerState, decider: Decider
) -> web.Response:
    prefix = request.query.get("prefix", "")
    result = await reconciliation.reconcile(state.pool, decider, prefix)
    return json_response(200, result)


async def _snapshot(request: web.Request, state: ServerState, decider: Decider) -> web.Response:
    snapshot = await decider.quiesce_and_snapshot(timeout_s=10.0)
    await store_snapshot(state.pool, snapshot)
    state.snapshots_taken += 1
    return json_response(200, {"seq": snapshot.seq, "digest": snapshot.digest})
