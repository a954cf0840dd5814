"""The card program end to end, with only the processor simulated: a real `pyjit serve`
(PostgreSQL, RabbitMQ in its own vhost), the processor simulator on loopback, and the
issuance service over HTTP. A company with three employees is onboarded and passes KYC,
cards are issued and activated, a spend control is set at the processor and mirrored into
the gateway, and authorizations, a clearing, a reversal, a refund and declines run through
the simulator, which asks the gateway by JIT and reports everything by signed webhooks.
It proves the gateway's ledger, the webhooks and the simulator agree to the cent, that card
and holder states arrived by webhook, and that decisions were published on `transactions`."""

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import aio_pika
import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from wh_support import (
    GATEWAY_PASSWORD,
    GATEWAY_USERNAME,
    WEBHOOK_PASSWORD,
    WEBHOOK_SECRET,
    WEBHOOK_USERNAME,
    Served,
    basic,
)

from services.issuance import Issuance, Vault, create_app
from services.issuance.service import GatewayMirror
from services.marqeta import MarqetaClient, RetryPolicy
from services.simulator import DeliveryPolicy, SimulatorConfig, TokenSource, state_of_app
from services.simulator import create_app as create_simulator

Start = Callable[..., Awaitable[Served]]
APPLICATION, ACCESS = "e2e-application", "e2e-admin-access"
ISSUANCE_AUTH = basic("issuance-caller", "Caller-Password-0123456789!")


def _person(last_name: str, ssn: str) -> dict[str, Any]:
    return {
        "first_name": "Grace",
        "last_name": last_name,
        "email": f"{last_name.lower()}@example.com",
        "address1": "1 Harbor Way",
        "city": "Oakland",
        "state": "CA",
        "postal_code": "94612",
        "country": "US",
        "birth_date": "1985-06-01",
        "identifications": [{"type": "SSN", "value": ssn}],
    }


class Program:
    """The simulator, its client, and the issuance service in front of both."""

    def __init__(self, simulator: web.Application, client: MarqetaClient, issuance: str):
        self.simulator = simulator
        self.client = client
        self.issuance = issuance
        self.session = aiohttp.ClientSession(headers={"Authorization": ISSUANCE_AUTH})

    async def call(self, path: str, payload: Any = None, status: int = 200) -> Any:
        async with self.session.post(self.issuance + path, json=payload or {}) as response:
            body = await response.json()
            assert response.status == status, body
            return body


async def _simulator(served: Served) -> tuple[TestServer, MarqetaClient, str]:
    config = SimulatorConfig(
        application_token=APPLICATION,
        admin_access_token=ACCESS,
        kyc_required=True,
        delivery=DeliveryPolicy(backoff_scale=0.001, timeout_s=5.0),
    )
    server = TestServer(create_simulator(config, tokens=TokenSource("e2e")), host="127.0.0.1")
    await server.start_server()
    retry = RetryPolicy(attempts=2, wait_first_s=0.01)
    client = MarqetaClient(str(server.make_url("/v3")), APPLICATION, ACCESS, retry=retry)
    source = await client.create_program_gateway_funding_source(
        {
            "name": "pyjit",
            "url": served.url + "/jit",
            "basic_auth_username": GATEWAY_USERNAME,
            "basic_auth_password": GATEWAY_PASSWORD,
            "timeout_millis": 3000,
        }
    )
    product = await client.create_card_product(
        {
            "name": "Employee cards",
            "start_date": "2024-01-01",
            "config": {
                "jit_funding": {
                    "programgateway_funding_source": {
                        "enabled": True,
                        "funding_source_token": source["token"],
                        "refunds_destination": "GATEWAY",
                    }
                }
            },
        }
    )
    await client.create_webhook(
        {
            "name": "pyjit",
            "events": ["*"],
            "config": {
                "url": served.url + "/webhooks/marqeta",
                "basic_auth_username": WEBHOOK_USERNAME,
                "basic_auth_password": WEBHOOK_PASSWORD,
                "secret": WEBHOOK_SECRET,
                "signature_algorithm": "HMAC_SHA_256",
            },
        }
    )
    return server, client, product["token"]


@pytest.fixture
async def program(
    database_url: str, rabbitmq_url: str, start: Start
) -> AsyncIterator[tuple[Served, Program]]:
    served = await start(database_url, rabbitmq_url=rabbitmq_url)
    simulator, client, product = await _simulator(served)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    async with aiohttp.ClientSession() as session:
        mirror = GatewayMirror(session, served.url, basic(GATEWAY_USERNAME, GATEWAY_PASSWORD))
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        issuance = Issuance(pool, client, mirror, Vault.from_setting(f"k1:{key}"))
        await issuance.prepare(product, "e2e")
        server = TestServer(create_app(issuance, ISSUANCE_AUTH), host="127.0.0.1")
        await server.start_server()
        running = Program(simulator.app, client, str(server.make_url("")).rstrip("/"))
        try:
            yield served, running
        finally:
            await running.session.close()
            await server.close()
            await client.close()
            await simulator.close()
            await pool.close()


async def _onboard(program: Program) -> tuple[str, list[str], list[str]]:
    company = {
        "business_name_legal": "Harbor Supply Co",
        "business_name_dba": "Harbor Supply",
        "identifications": [{"type": "BUSINESS_TAX_ID", "value": "12-3456789"}],
    }
    staff = [_person(name, f"12345{n:04d}") for n, name in enumerate(("Hopper", "Ng", "Ruiz"))]
    onboarded = await program.call("/companies", {"company": company, "employees": staff}, 201)
    business = onboarded["token"]
    employees = [person["token"] for person in onboarded["employees"]]
    assert {person["status"] for person in onboarded["employees"]} == {"UNVERIFIED"}

    for holder in (business, *employees):
        verified = await program.call(f"/holders/{holder}/kyc")
        assert (verified["kyc_status"], verified["status"]) == ("SUCCESS", "ACTIVE")
    await program.call(f"/holders/{business}/funding", {"token": "f1", "amount": "1000.00"})

    cards = []
    for employee in employees:
        card = await program.call(f"/holders/{employee}/cards", status=201)
        assert card["state"] == "UNACTIVATED"
        assert len(card["last_four"]) == 4
        activated = await program.call(f"/cards/{card['token']}/transitions", {"state": "ACTIVE"})
        assert activated["state"] == "ACTIVE"
        cards.append(card["token"])
    return business, employees, cards


def _swipe(card: str, amount: str, **more: Any) -> dict[str, Any]:
    acceptor = {"mid": "m-harbor", "mcc": "5411", "name": "Harbor Grocer"}
    return {"card_token": card, "amount": amount, "card_acceptor": acceptor, **more}


async def _spend(program: Program, employees: list[str], cards: list[str]) -> None:
    client = program.client
    await program.call(
        "/velocitycontrols",
        {
            "name": "Ruiz daily",
            "association": {"user_token": employees[2]},
            "amount_limit": "50.00",
            "currency_code": "USD",
            "velocity_window": "DAY",
            "usage_limit": -1,
            "include_purchases": True,
        },
        201,
    )
    first = await client.simulate_authorization(_swipe(cards[0], "100.00"))
    assert first["state"] == "PENDING"
    await client.simulate_clearing(
        {"preceding_related_transaction_token": first["token"], "amount": "90.00"}
    )
    second = await client.simulate_authorization(_swipe(cards[1], "40.00"))
    await client.simulate_reversal({"preceding_related_transaction_token": second["token"]})
    over_limit = await client.simulate_authorization(_swipe(cards[2], "60.00"))
    assert over_limit["state"] == "DECLINED"
    held = await client.simulate_authorization(_swipe(cards[2], "30.00"))
    assert held["state"] == "PENDING"
    await client.simulate("refund", _swipe(cards[0], "15.00"))
    too_much = await client.simulate_authorization(_swipe(cards[1], "2000.00"))
    assert too_much["state"] == "DECLINED"
    assert too_much["gpa_order"]["jit_funding"]["decline_reason"] == "INSUFFICIENT_FUNDS"


async def _settled(served: Served, program: Program) -> list[dict[str, Any]]:
    state = state_of_app(program.simulator)
    await asyncio.wait_for(state.dispatcher.drain(), 60)
    transactions = [dict(t) for t in state.transactions.values()]
    tokens = [t["token"] for t in transactions]
    await served.wait_for(
        "SELECT count(*) FROM webhook_events WHERE event_token = ANY($1)",
        tokens,
        expect=len(tokens),
        within_s=60,
    )
    return transactions


def _net_spend(rows: list[tuple[str, str, Decimal]]) -> Decimal:
    spent = sum(
        (amount for kind, _, amount in rows if kind == "authorization.clearing"), Decimal(0)
    )
    refunded = sum((amount for kind, _, amount in rows if kind == "refund"), Decimal(0))
    return spent - refunded


async def test_company_program_agrees_to_the_cent(
    program: tuple[Served, Program], rabbitmq_url: str
) -> None:
    served, running = program
    connection, queue = await _follow_decisions(rabbitmq_url)
    business, employees, cards = await _onboard(running)
    await _spend(running, employees, cards)
    transactions = await _settled(served, running)

    simulator_rows = [(t["type"], t["state"], Decimal(str(t["amount"]))) for t in transactions]
    webhook_rows = [
        (row["event_type"].removeprefix("transaction."), row["state"], Decimal(row["amount"]))
        for row in await served.fetch(
            "SELECT event_type, state, amount FROM webhook_events "
            "WHERE event_type LIKE 'transaction.%'"
        )
    ]
    assert _net_spend(simulator_rows) == _net_spend(webhook_rows) == Decimal("75.00")
    open_holds = state_of_app(running.simulator).holds.values()
    simulator_held = sum((hold.amount for hold in open_holds), Decimal(0))
    posted, held = await served.account(business)
    assert (posted, held) == (100_000 - 7_500, 3_000)
    assert Decimal(held) / 100 == simulator_held

    states = await served.fetch("SELECT object_token, state FROM webhook_states")
    reported = {row["object_token"]: row["state"] for row in states}
    assert all(reported[card] == "ACTIVE" for card in cards)
    assert all(reported[holder] == "ACTIVE" for holder in (business, *employees))
    stored = await served.fetch("SELECT identifications_sealed FROM issuance_holders")
    assert all("123450" not in row[0] for row in stored)

    published = await _routing_keys(connection, queue)
    assert published.count("transaction.authorization.approved") == 3
    assert published.count("transaction.authorization.declined") == 1
    assert "transaction.authorization.clearing.approved" in published


async def _follow_decisions(rabbitmq_url: str) -> tuple[Any, Any]:
    """A queue bound to every `transaction.#` decision from now on, and its connection."""
    connection = await aio_pika.connect_robust(rabbitmq_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        "transactions", aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, "transaction.#")
    return connection, queue


async def _routing_keys(connection: Any, queue: Any) -> list[str]:
    """The routing keys of every message until the queue stays empty for two seconds."""
    keys: list[str] = []
    idle = 0
    try:
        while idle < 20:
            message = await queue.get(fail=False)
            if message is None:
                idle += 1
                await asyncio.sleep(0.1)
                continue
            idle = 0
            await message.ack()
            keys.append(message.routing_key or "")
        return keys
    finally:
        await connection.close()
