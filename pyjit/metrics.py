"""Prometheus metrics of every role, on a registry each application owns.

One `Metrics` object per application (an edge, a decider, a worker, the portal) holds every
metric the project exports, so a test can build several applications in one process without
the "duplicated timeseries" error of the global registry. Roles record only what they do;
the others stay at zero and still appear on `/metrics`, which keeps dashboards uniform.

Latencies are in seconds (the Prometheus convention) with buckets from 5 microseconds, an
engine decision, to 10 seconds, past the processor's budget of 1-7 s. The JIT path records
through `DecisionMetrics`, which caches each label combination's child so a decision costs a
few dictionary look-ups and histogram increments, not a label resolution per observation.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.process_collector import ProcessCollector

from pyjit.clock import Clock

LATENCY_BUCKETS_S = (
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
RECOVERY_BUCKETS_S = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

# Where a JIT decision spends its time. "parse" is the HTTP side before the engine (auth,
# reading and size-checking the body); "engine" is the engine call, which parses the JSON
# itself and decides; "commit_wait" is the wait for the group commit that makes it durable.
STAGES = ("parse", "engine", "commit_wait")


def _latency(
    name: str, doc: str, labels: tuple[str, ...], registry: CollectorRegistry
) -> Histogram:
    return Histogram(name, doc, labels, registry=registry, buckets=LATENCY_BUCKETS_S)


@dataclass(eq=False)
class Metrics:
    """Every metric of the project, registered on `registry`."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        registry = self.registry
        self._jit(registry)
        self._journal(registry)
        self.grpc_seconds = _latency(
            "pyjit_grpc_request_seconds",
            "gRPC call latency by method and status code",
            ("method", "status"),
            registry,
        )
        self._webhooks(registry)
        self.recovery_seconds = Histogram(
            "pyjit_recovery_seconds",
            "Time to rebuild the engine from the snapshot and the journal at start",
            registry=registry,
            buckets=RECOVERY_BUCKETS_S,
        )
        self.recovery_entries = Gauge(
            "pyjit_recovery_entries",
            "Journal entries replayed by the last recovery",
            registry=registry,
        )
        self.ready = Gauge(
            "pyjit_ready", "1 once the process answers /ready with 200", registry=registry
        )
        self.portal_seconds = _latency(
            "pyjit_portal_request_seconds",
            "Portal request latency by route, method and status",
            ("route", "method", "status"),
            registry,
        )
        # CPU, memory and open files of this process, as the usual `process_*` series.
        ProcessCollector(registry=registry)

    def _jit(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "pyjit_jit_decisions",
            "JIT decisions by method, outcome and decline reason ('' when approved)",
            ("method", "outcome", "reason"),
            registry=registry,
        )
        self.rejected = Counter(
            "pyjit_jit_rejected",
            "JIT requests refused before a decision, by HTTP status",
            ("status",),
            registry=registry,
        )
        self.decision_seconds = _latency(
            "pyjit_jit_decision_seconds",
            "JIT decision latency from request received to answer ready",
            (),
            registry,
        )
        self.stage_seconds = _latency(
            "pyjit_jit_stage_seconds",
            "JIT decision latency by stage: parse, engine, commit_wait",
            ("stage",),
            registry,
        )
        self.voids = Counter(
            "pyjit_jit_voids",
            "Decisions voided because their commit missed the budget",
            registry=registry,
        )

    def _journal(self, registry: CollectorRegistry) -> None:
        self.commit_batch_entries = Histogram(
            "pyjit_journal_commit_batch_entries",
            "Journal entries per group commit",
            registry=registry,
            buckets=BATCH_SIZE_BUCKETS,
        )
        self.commit_seconds = _latency(
            "pyjit_journal_commit_seconds",
            "Latency of one group commit, retries included",
            (),
            registry,
        )
        self.commit_failures = Counter(
            "pyjit_journal_commit_failures",
            "Failed group-commit attempts (each is retried)",
            registry=registry,
        )
        self.journal_backlog = Gauge(
            "pyjit_journal_backlog_entries",
            "Entries submitted to the journal writer and not yet committed",
            registry=registry,
        )

    def _webhooks(self, registry: CollectorRegistry) -> None:
        self.webhooks_received = Counter(
            "pyjit_webhooks_received",
            "Webhook events received, by event type and result (accepted, duplicate, rejected)",
            ("type", "result"),
            registry=registry,
        )
        self.webhook_queue_depth = Gauge(
            "pyjit_webhook_queue_depth",
            "Webhook events waiting in the queue",
            ("queue",),
            registry=registry,
        )
        self.webhook_retries = Counter(
            "pyjit_webhook_retries",
            "Webhook deliveries retried by a worker",
            ("type",),
            registry=registry,
        )
        self.webhook_dead_letters = Counter(
            "pyjit_webhook_dead_letters",
            "Webhook events moved to the dead-letter queue",
            ("type",),
            registry=registry,
        )
        self.webhook_seconds = _latency(
            "pyjit_webhook_processing_seconds",
            "Webhook event processing latency in a worker, by event type",
            ("type",),
            registry,
        )

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)

    def decision_metrics(self) -> "DecisionMetrics":
        return DecisionMetrics(self)


# The processor's JIT methods number about forty; further ones share the label "other".
METHOD_LABELS_MAX = 64
METHOD_OTHER = "other"


class DecisionMetrics:
    """The JIT path's recorder: cached children, nanosecond inputs, no label parsing."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._counted: dict[tuple[str, str, str], Counter] = {}
        self._methods: set[str] = set()
        self._decision = metrics.decision_seconds
        self._parse = metrics.stage_seconds.labels("parse")
        self._engine = metrics.stage_seconds.labels("engine")
        self._commit_wait = metrics.stage_seconds.labels("commit_wait")
        self._voids = metrics.voids

    def decided(self, method: str, outcome: str, reason: str | None, latency_ns: int) -> None:
        key = (method, outcome, reason or "")
        counter = self._counted.get(key)
        if counter is None:
            if method not in self._methods and len(self._methods) >= METHOD_LABELS_MAX:
                # The method is the caller's text: past the processor's few dozen, one more
                # series per made-up method would grow the registry without end.
                key = (METHOD_OTHER, outcome, reason or "")
            else:
                self._methods.add(method)
            counter = self._counted.get(key) or self._metrics.decisions.labels(*key)
            self._counted[key] = counter
        counter.inc()
        self._decision.observe(latency_ns / 1e9)

    def parsed(self, latency_ns: int) -> None:
        self._parse.observe(latency_ns / 1e9)

    def engine(self, latency_ns: int) -> None:
        self._engine.observe(latency_ns / 1e9)

    def commit_waited(self, latency_ns: int) -> None:
        self._commit_wait.observe(latency_ns / 1e9)

    def voided(self) -> None:
        self._voids.inc()


METRICS = web.AppKey("metrics", Metrics)


def handler(metrics: Metrics) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A `GET /metrics` handler for `metrics`; any role's application can route it."""

    async def exposition(request: web.Request) -> web.Response:
        response = web.Response(body=metrics.exposition())
        # aiohttp refuses a content type with parameters in the constructor.
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    return exposition


def mount(app: web.Application, metrics: Metrics | None = None) -> Metrics:
    """Route `GET /metrics` on `app` and keep the metrics at `app[METRICS]`; returns them.

    A sub-application (the portal, a webhook intake) calls this with its own `Metrics`, or
    with the parent's to share one registry."""
    metrics = metrics if metrics is not None else Metrics()
    app[METRICS] = metrics
    app.router.add_get("/metrics", handler(metrics))
    return metrics


def request_timer(
    histogram: Histogram, clock: Clock, route_of: Callable[[web.Request], str] | None = None
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """An aiohttp middleware observing each request's latency on a histogram labelled
    (route, method, status), such as `Metrics.portal_seconds`. The route is the matched
    resource's canonical path (`/cards/{token}`), never the raw path, so a token in a URL
    does not create a series per card."""

    @web.middleware
    async def timed(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started_ns = clock.monotonic_ns()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as error:
            status = error.status
            raise
        finally:
            route = route_of(request) if route_of else _route(request)
            elapsed_s = (clock.monotonic_ns() - started_ns) / 1e9
            histogram.labels(route, request.method, str(status)).observe(elapsed_s)

    return timed


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"
