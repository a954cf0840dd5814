"""Simulated card transactions send the processor's real JIT messages to our gateway.

A small aiohttp app stands in for our gateway (the real one is built beside this). Proves:
an authorization POSTs the whole transaction with `gpa_order.jit_funding` and the
processor's fields and Basic auth, and the gateway's 200 approves and 402 declines with
its reason; a gateway slower than `timeout_millis` is a decline with
`gateway_log.timed_out`; the processor's own spend controls decline before any JIT message;
incrementals, clearings, reversals, force posts, refunds and issuer expiry send
informative messages that carry the chain's tokens; the outcome arrives as a webhook whose
`X-Marqeta-Signature` verifies against the raw body.
"""

import asyncio
import base64
import hashlib
import hmac
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sim_support import (
    GATEWAY_PASSWORD,
    GATEWAY_USERNAME,
    WEBHOOK_SECRET,
    Recorder,
    Simulator,
    complete_user,
    jit_program,
    settle,
    subscribe,
)

from services.marqeta import codec
from services.marqeta.shapes import CardAcceptor, SimulationRequest
from services.simulator import expire_due_holds

COFFEE: CardAcceptor = {
    "mid": "merchant-42",
    "mcc": "0742",
    "name": "Vet & Coffee",
    "city": "Oakland",
    "state": "CA",
    "country_code": "USA",
}


async def _card(simulator: Simulator, gateway: Recorder, timeout_millis: int = 2000) -> str:
    client = simulator.client
    product_token = await jit_program(client, gateway.url, timeout_millis)
    user = await client.create_user({**complete_user(), "token": "holder-1"})
    card = await client.create_card(
        {"user_token": user["token"], "card_product_token": product_token}
    )
    return card["token"]


def _swipe(card_token: str, amount: str, **more: Any) -> SimulationRequest:
    request: SimulationRequest = {
        "card_token": card_token,
        "amount": Decimal(amount),
        "card_acceptor": COFFEE,
        "network": "VISA",
        "currency_code": "USD",
    }
    return {**request, **more}  # type: ignore[typeddict-item]


def _jit_messages(gateway: Recorder) -> list[dict[str, Any]]:
    return [codec.decode(body) for _, body in gateway.requests]


async def test_an_authorization_posts_the_real_jit_shape_and_200_approves(
    simulator: Simulator, gateway: Recorder
) -> None:
    card_token = await _card(simulator, gateway)

    transaction = await simulator.client.simulate_authorization(_swipe(card_token, "12.30"))

    ((headers, raw),) = gateway.requests
    message = codec.decode(raw)
    jit = message["gpa_order"]["jit_funding"]
    expected_auth = base64.b64encode(f"{GATEWAY_USERNAME}:{GATEWAY_PASSWORD}".encode()).decode()
    assert headers["Authorization"] == "Basic " + expected_auth
    assert b'"amount":12.30' in raw, "amounts travel as exact JSON numbers"
    assert jit["method"] == "pgfs.authorization"
    assert jit["amount"] == Decimal("12.30")
    assert jit["user_token"] == jit["acting_user_token"] == "holder-1"
    assert "original_jit_funding_token" not in jit
    assert message["type"] == "authorization" and message["state"] == "PENDING"
    assert message["card_token"] == card_token and message["currency_code"] == "USD"
    assert (message["network"], message["subnetwork"]) == ("VISA", "GATEWAY_JIT")
    assert message["card_acceptor"] == COFFEE, "the MCC stays a 4-character string"
    assert message["created_time"] == "2024-05-01T12:00:00Z"
    assert {"pos", "token", "user_token"} <= message.keys()
    assert transaction["state"] == "PENDING" and transaction["response"]["code"] == "0000"
    log = transaction["gpa_order"]["funding"]["gateway_log"]
    assert log["timed_out"] is False and log["response"]["code"] == "200"


async def test_a_402_declines_with_the_gateways_reason(
    simulator: Simulator, gateway: Recorder
) -> None:
    card_token = await _card(simulator, gateway)

    async def decline(body: bytes) -> tuple[int, Any]:
        jit = codec.decode(body)["gpa_order"]["jit_funding"]
        return 402, {"jit_funding": {**jit, "decline_reason": "INSUFFICIENT_FUNDS"}}

    gateway.answer = decline
    transaction = await simulator.client.simulate_authorization(_swipe(card_token, "99.00"))

    assert transaction["state"] == "DECLINED"
    assert transaction["response"]["code"] == "1016"
    assert transaction["gpa_order"]["jit_funding"]["decline_reason"] == "INSUFFICIENT_FUNDS"
    assert simulator.state.holds == {}


async def test_a_slow_gateway_is_a_decline_marked_timed_out(
    simulator: Simulator, gateway: Recorder, webhook_endpoint: Recorder
) -> None:
    card_token = await _card(simulator, gateway, timeout_millis=1000)
    await subscribe(simulator.client, webhook_endpoint, ["transaction.*"])

    async def too_late(body: bytes) -> tuple[int, Any]:
        await asyncio.sleep(1.5)
        return 200, None

    gateway.answer = too_late
    transaction = await simulator.client.simulate_authorization(_swipe(card_token, "5.00"))
    await settle(simulator)

    assert transaction["state"] == "DECLINED"
    assert transaction["gpa_order"]["funding"]["gateway_log"]["timed_out"] is True
    ((_, raw),) = webhook_endpoint.requests
    (event,) = codec.decode(raw)["transactions"]
    assert event["token"] == transaction["token"]
    assert event["gpa_order"]["funding"]["gateway_log"]["timed_out"] is True


async def test_the_outcome_arrives_as_a_webhook_with_a_verifiable_signature(
    simulator: Simulator, gateway: Recorder, webhook_endpoint: Recorder
) -> None:
    card_token = await _card(simulator, gateway)
    await subscribe(simulator.client, webhook_endpoint, ["transaction.*"])

    transaction = await simulator.client.simulate_authorization(_swipe(card_token, "7.25"))
    await settle(simulator)

    ((headers, raw),) = webhook_endpoint.requests
    expected = hmac.new(WEBHOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Marqeta-Signature"], expected)
    (event,) = codec.decode(raw)["transactions"]
    assert event["token"] == transaction["token"] and event["state"] == "PENDING"
    assert event["gpa_order"]["jit_funding"]["method"] == "pgfs.authorization"


async def test_incremental_clearing_and_reversal_carry_the_chain(
    simulator: Simulator, gateway: Recorder
) -> None:
    client = simulator.client
    card_token = await _card(simulator, gateway)

    first = await client.simulate_authorization(_swipe(card_token, "50.00"))
    link = {"preceding_related_transaction_token": first["token"]}
    grown = await client.simulate("authorization.incremental", {**link, "amount": Decimal("10")})
    cleared = await client.simulate_clearing({**link, "amount": Decimal("55.00")})
    second = await client.simulate_authorization(_swipe(card_token, "20.00"))
    released = await client.simulate_reversal(
        {"preceding_related_transaction_token": second["token"], "amount": Decimal("8.00")}
    )

    auth, increment, capture, _, reversal = (
        m["gpa_order"]["jit_funding"] for m in _jit_messages(gateway)
    )
    assert increment["method"] == "pgfs.authorization.incremental"
    assert increment["original_jit_funding_token"] == auth["token"]
    assert capture["method"] == "pgfs.authorization.capture"
    assert capture["original_jit_funding_token"] == auth["token"]
    assert capture["incremental_authorization_jit_funding_tokens"] == [increment["token"]]
    assert capture["amount"] == Decimal("55.00")
    assert reversal["method"] == "pgfs.authorization.reversal"
    assert reversal["amount"] == Decimal("8.00")
    assert grown["transaction"]["state"] == "PENDING"
    assert cleared["state"] == released["state"] == "COMPLETION"
    assert (await client.get_transaction(first["token"]))["state"] == "COMPLETION"
    assert simulator.state.holds[second["token"]].amount == Decimal("12.00")


async def test_force_posts_refunds_and_issuer_expiry_inform_the_gateway(
    simulator: Simulator, gateway: Recorder
) -> None:
    client = simulator.client
    card_token = await _card(simulator, gateway)
    authorized = await client.simulate_authorization(_swipe(card_token, "30.00"))

    await client.simulate_clearing(_swipe(card_token, "4.00", force_post=True))
    simulator.clock.advance(timedelta(days=8))
    (expired,) = await expire_due_holds(simulator.state)
    late = await client.simulate_clearing(
        {
            "preceding_related_transaction_token": authorized["token"],
            "amount": Decimal("30.00"),
            "force_post": True,
        }
    )
    await client.simulate("refund", _swipe(card_token, "4.00"))

    messages = _jit_messages(gateway)
    methods = [m["gpa_order"]["jit_funding"]["method"] for m in messages]
    assert methods == [
        "pgfs.authorization",
        "pgfs.force_capture",
        "pgfs.authorization.reversal",
        "pgfs.force_capture",
        "pgfs.refund",
    ]
    auth_token = messages[0]["gpa_order"]["jit_funding"]["token"]
    assert "original_jit_funding_token" not in messages[1]["gpa_order"]["jit_funding"]
    assert messages[2]["type"] == "authorization.reversal.issuerexpiration"
    assert messages[2]["gpa_order"]["jit_funding"]["original_jit_funding_token"] == auth_token
    assert messages[3]["gpa_order"]["jit_funding"]["original_jit_funding_token"] == auth_token
    assert expired["amount"] == Decimal("30.00") and late["state"] == "COMPLETION"
    assert simulator.state.holds == {}


async def test_the_processors_spend_controls_decline_before_any_jit_message(
    simulator: Simulator, gateway: Recorder
) -> None:
    client = simulator.client
    card_token = await _card(simulator, gateway)
    await client.create_velocity_control(
        {
            "association": {"user_token": "holder-1"},
            "amount_limit": Decimal("40.00"),
            "currency_code": "USD",
            "velocity_window": "DAY",
        }
    )
    await client.create_auth_control({"name": "no vets", "merchant_scope": {"mcc": "0742"}})
    await client.create_exempt_mid({"mid": "merchant-42"})

    approved = await client.simulate_authorization(_swipe(card_token, "30.00"))
    over_limit = await client.simulate_authorization(_swipe(card_token, "15.00"))
    blocked_merchant = {**COFFEE, "mid": "merchant-43"}
    blocked = await client.simulate_authorization(
        _swipe(card_token, "1.00", card_acceptor=blocked_merchant)
    )
    available = await client.list_velocity_available("holder-1")

    assert approved["state"] == "PENDING"
    assert over_limit["state"] == blocked["state"] == "DECLINED"
    assert over_limit["response"]["code"] == "1814"
    assert blocked["response"]["code"] == "1813"
    assert len(gateway.requests) == 1, "only the approved swipe reached the gateway"
    assert available["data"][0]["available"]["amount"] == Decimal("10.00")
