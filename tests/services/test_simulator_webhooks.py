"""Webhook delivery as the processor does it: batches, signatures, retries, ping and replay.

Proves: an endpoint that answers 500 gets the same signed body again after the processor's
powers-of-four backoff (scaled down here) until it answers 200; the processor gives up
after ten retries; events go out in batches of at most ten keyed by category; a webhook
configured for SHA-1 is signed with SHA-1; Basic auth is sent; a ping sends the health
check body; a recorded event can be replayed; a seeded simulator repeats its tokens.
"""

import base64
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from decimal import Decimal

from sim_support import (
    WEBHOOK_PASSWORD,
    WEBHOOK_SECRET,
    WEBHOOK_USERNAME,
    Recorder,
    Simulator,
    complete_user,
    settle,
    subscribe,
)

from services.marqeta import codec
from services.simulator.webhooks import publish

StartSimulator = Callable[..., Awaitable[Simulator]]


async def _suspend(simulator: Simulator, user_token: str) -> str:
    transition = await simulator.client.transition_user(
        {"user_token": user_token, "status": "SUSPENDED", "channel": "API", "reason_code": "01"}
    )
    return transition["token"]


async def test_a_refused_delivery_is_retried_with_backoff_until_200(
    simulator: Simulator, webhook_endpoint: Recorder
) -> None:
    await subscribe(simulator.client, webhook_endpoint, ["usertransition.*"])
    user = await simulator.client.create_user(complete_user())
    webhook_endpoint.statuses = [500, 503]

    transition_token = await _suspend(simulator, user["token"])
    await settle(simulator)

    bodies = [raw for _, raw in webhook_endpoint.requests]
    assert len(bodies) == 3 and len(set(bodies)) == 1, "the same body is sent each time"
    assert [a.status for a in simulator.state.dispatcher.attempts] == [500, 503, 200]
    (event,) = codec.decode(bodies[0])["usertransitions"]
    assert event["token"] == transition_token and event["status"] == "SUSPENDED"
    headers = webhook_endpoint.requests[0][0]
    credentials = base64.b64encode(f"{WEBHOOK_USERNAME}:{WEBHOOK_PASSWORD}".encode()).decode()
    assert headers["Authorization"] == "Basic " + credentials


async def test_delivery_gives_up_after_ten_retries(
    start_simulator: StartSimulator, webhook_endpoint: Recorder
) -> None:
    simulator = await start_simulator(backoff_scale=1e-7)
    await subscribe(simulator.client, webhook_endpoint, ["*"])
    user = await simulator.client.create_user(complete_user())
    webhook_endpoint.statuses = [500] * 20

    await _suspend(simulator, user["token"])
    await settle(simulator)

    assert len(webhook_endpoint.requests) == 11


async def test_events_are_batched_by_category_ten_at_most(
    simulator: Simulator, webhook_endpoint: Recorder
) -> None:
    await subscribe(simulator.client, webhook_endpoint, ["*"])

    # Published in one step, as when one operation produces many events at once.
    for number in range(12):
        event = {"token": f"t{number}", "status": "ACTIVE"}
        publish(simulator.state, "usertransition.active", f"t{number}", event)
    publish(simulator.state, "cardtransition.state.activated", "c1", {"token": "c1"})
    await settle(simulator)

    batches = [codec.decode(raw) for _, raw in webhook_endpoint.requests]
    sizes = sorted((key, len(events)) for batch in batches for key, events in batch.items())
    assert sizes == [("cardtransitions", 1), ("usertransitions", 2), ("usertransitions", 10)]


async def test_a_sha1_webhook_is_signed_with_sha1(
    simulator: Simulator, webhook_endpoint: Recorder
) -> None:
    await subscribe(simulator.client, webhook_endpoint, ["usertransition.*"], "HMAC_SHA_1")
    user = await simulator.client.create_user(complete_user())

    await _suspend(simulator, user["token"])
    await settle(simulator)

    ((headers, raw),) = webhook_endpoint.requests
    expected = hmac.new(WEBHOOK_SECRET.encode(), raw, hashlib.sha1).hexdigest()
    assert hmac.compare_digest(headers["X-Marqeta-Signature"], expected)


async def test_only_subscribed_events_are_sent(
    simulator: Simulator, webhook_endpoint: Recorder
) -> None:
    await subscribe(simulator.client, webhook_endpoint, ["usertransition.closed"])
    user = await simulator.client.create_user(complete_user())

    await _suspend(simulator, user["token"])
    await settle(simulator)

    assert webhook_endpoint.requests == []


async def test_ping_sends_the_health_check(
    simulator: Simulator, webhook_endpoint: Recorder
) -> None:
    webhook_token = await subscribe(simulator.client, webhook_endpoint, ["*"])

    answer = await simulator.client.ping_webhook(webhook_token)

    ((_, raw),) = webhook_endpoint.requests
    assert codec.decode(raw) == {"pings": [{"token": "marqeta", "payload": "healthcheck"}]}
    assert answer == codec.decode(raw)


async def test_a_recorded_event_can_be_replayed(
    simulator: Simulator, webhook_endpoint: Recorder
) -> None:
    webhook_token = await subscribe(simulator.client, webhook_endpoint, ["usertransition.*"])
    user = await simulator.client.create_user(complete_user())
    transition_token = await _suspend(simulator, user["token"])
    await settle(simulator)

    await simulator.client.resend_webhook_event(webhook_token, "usertransition", transition_token)
    await settle(simulator)

    first, again = (raw for _, raw in webhook_endpoint.requests)
    assert first == again


async def test_a_seed_makes_the_simulators_tokens_repeat(start_simulator: StartSimulator) -> None:
    runs = [await start_simulator(seed="same") for _ in range(2)]

    tokens = []
    for run in runs:
        user = await run.client.create_user({"token": "same-user", "first_name": "A"})
        source = await run.client.create_program_funding_source({"name": "program"})
        order = await run.client.create_gpa_order(
            {
                "user_token": user["token"],
                "amount": Decimal("1.00"),
                "currency_code": "USD",
                "funding_source_token": source["token"],
            }
        )
        tokens.append(order["transaction_token"])

    assert tokens[0] == tokens[1]
