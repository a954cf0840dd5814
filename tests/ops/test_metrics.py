"""Proves /metrics: every metric the operators' dashboards need is exported on a registry the
app owns (so two apps live in one process), and a real gateway's counters and histograms
match the traffic it was sent: decisions by method, outcome and reason, refusals by status,
each stage of a decision, the group commits and the recovery."""

from collections.abc import Iterable

import aiohttp
import orjson
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from pyjit import metrics
from pyjit.clock import SystemClock
from tests.gateway.conftest import AUTH, Gateway, jit_body, program

EXPECTED_FAMILIES = {
    "pyjit_jit_decisions",
    "pyjit_jit_rejected",
    "pyjit_jit_decision_seconds",
    "pyjit_jit_stage_seconds",
    "pyjit_jit_voids",
    "pyjit_journal_commit_batch_entries",
    "pyjit_journal_commit_seconds",
    "pyjit_journal_commit_failures",
    "pyjit_journal_backlog_entries",
    "pyjit_grpc_request_seconds",
    "pyjit_webhooks_received",
    "pyjit_webhook_queue_depth",
    "pyjit_webhook_retries",
    "pyjit_webhook_dead_letters",
    "pyjit_webhook_processing_seconds",
    "pyjit_recovery_seconds",
    "pyjit_recovery_entries",
    "pyjit_portal_request_seconds",
}


def samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(found: Iterable[Sample], name: str, **labels: str) -> float:
    matching = [s.value for s in found if s.name == name and s.labels == labels]
    assert len(matching) == 1, (name, labels, matching)
    return matching[0]


def test_each_app_owns_its_registry() -> None:
    first, second = metrics.Metrics(), metrics.Metrics()
    first.decision_metrics().decided("pgfs.authorization", "approved", None, 2_000)

    families = {
        family.name for family in text_string_to_metric_families(first.exposition().decode())
    }
    assert families >= EXPECTED_FAMILIES
    counted = samples(first.exposition().decode())
    other = samples(second.exposition().decode())
    labels = {"method": "pgfs.authorization", "outcome": "approved", "reason": ""}
    assert value(counted, "pyjit_jit_decisions_total", **labels) == 1
    assert not [s for s in other if s.name == "pyjit_jit_decisions_total"]


def test_buckets_reach_from_microseconds_to_seconds() -> None:
    recorder = metrics.Metrics()
    stages = recorder.decision_metrics()
    stages.engine(3_000)
    stages.commit_waited(2_000_000_000)
    found = samples(recorder.exposition().decode())
    engine, commit = {"stage": "engine"}, {"stage": "commit_wait"}
    assert value(found, "pyjit_jit_stage_seconds_bucket", le="5e-06", **engine) == 1
    assert value(found, "pyjit_jit_stage_seconds_bucket", le="1.0", **commit) == 0
    assert value(found, "pyjit_jit_stage_seconds_bucket", le="2.5", **commit) == 1


async def test_a_sub_app_mounts_its_own_metrics() -> None:
    portal = metrics.Metrics()
    app = web.Application(middlewares=[metrics.request_timer(portal.portal_seconds, SystemClock())])

    async def card(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/cards/{token}", card)
    metrics.mount(app, portal)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as client:
            for token in ("c1", "c2"):
                async with client.get(f"http://127.0.0.1:{port}/cards/{token}") as response:
                    assert response.status == 200
            async with client.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert response.headers["Content-Type"].startswith("text/plain")
                text = await response.text()
    finally:
        await runner.cleanup()
    found = samples(text)
    route = {"route": "/cards/{token}", "method": "GET", "status": "200"}
    assert value(found, "pyjit_portal_request_seconds_count", **route) == 2


async def test_gateway_metrics_follow_the_traffic(gateway: Gateway) -> None:
    status, _ = await gateway.admin("POST", "/admin/program", program("10.00"))
    assert status == 200
    statuses = [(await gateway.jit(jit_body(f"m-{n}", amount="3.00")))[0] for n in range(5)]
    assert statuses == [200, 200, 200, 402, 402]
    assert (await gateway.jit(b'{"not": "a jit message"}'))[0] == 400
    assert (await gateway.jit(jit_body("m-x"), auth=None))[0] == 401

    async with gateway.session.get(f"{gateway.url}/metrics") as response:
        assert response.status == 200
        found = samples(await response.text())
    method = "pgfs.authorization"
    approved = {"method": method, "outcome": "approved", "reason": ""}
    declines = [
        s
        for s in found
        if s.name == "pyjit_jit_decisions_total" and s.labels.get("outcome") == "declined"
    ]
    assert value(found, "pyjit_jit_decisions_total", **approved) == 3
    assert sum(s.value for s in declines) == 2
    assert all(s.labels["reason"] for s in declines)
    assert value(found, "pyjit_jit_rejected_total", status="400") == 1
    assert value(found, "pyjit_jit_rejected_total", status="401") == 1
    assert value(found, "pyjit_jit_decision_seconds_count") == 5
    for stage in ("parse", "engine"):
        assert value(found, "pyjit_jit_stage_seconds_count", stage=stage) >= 5
    # Every approval waited for its commit; a decline waits only if it journals something.
    assert 3 <= value(found, "pyjit_jit_stage_seconds_count", stage="commit_wait") <= 5
    batches = value(found, "pyjit_journal_commit_batch_entries_count")
    entries = value(found, "pyjit_journal_commit_batch_entries_sum")
    assert batches >= 1 and entries == await gateway.journal_count()
    assert value(found, "pyjit_journal_commit_seconds_count") == batches
    assert value(found, "pyjit_recovery_seconds_count") == 1
    assert value(found, "pyjit_journal_backlog_entries") == 0


async def test_metrics_answer_while_the_processor_is_refused(gateway: Gateway) -> None:
    async with gateway.session.post(
        f"{gateway.url}/jit", data=orjson.dumps({}), headers={"Authorization": AUTH + "x"}
    ) as response:
        assert response.status == 401
    async with gateway.session.get(f"{gateway.url}/metrics") as response:
        found = samples(await response.text())
    assert value(found, "pyjit_jit_rejected_total", status="401") == 1


def test_made_up_methods_share_one_label_past_the_processors_own() -> None:
    registry = metrics.Metrics()
    recorder = registry.decision_metrics()
    real = ["pgfs.authorization", "pgfs.authorization.reversal"]
    made_up = [f"pgfs.zz{index}" for index in range(200)]

    for method in [*real, *made_up, *real]:
        recorder.decided(method, "declined", "TRANSACTION_NOT_PERMITTED", 1_000)

    counted = {
        sample.labels["method"]: sample.value
        for sample in samples(registry.exposition().decode())
        if sample.name == "pyjit_jit_decisions_total"
    }
    assert len(counted) == metrics.METHOD_LABELS_MAX + 1
    assert counted["pgfs.authorization"] == 2 and counted["pgfs.authorization.reversal"] == 2
    assert counted[metrics.METHOD_OTHER] == 200 - (metrics.METHOD_LABELS_MAX - 2)
    assert sum(counted.values()) == 204
