"""The card program end to end, with only the processor simulated: a real `pyjit serve`
(PostgreSQL, RabbitMQ in its own vhost), the processor simulator on loopback, and the
issuance service over HTTP. A company with three employees is onboarded and passes KYC,
cards are issued and activated, a spend control is set at the processor and mirrored into
the gateway, and authorizations, a clearing, a reversal, a refund and declines run through
the simulator, which asks the gateway by JIT and reports everything by signed webhooks.
It proves the gateway's ledger, the webhooks and the simulator agree to the cent, that card
and holder states arrived by webhook, and that decisions were published on `transactions`."""

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import aio_pika
from program_support import Program, person
from wh_support import (
    Served,
)

from services.simulator import state_of_app

Start = Callable[..., Awaitable[Served]]


async def _onboard(program: Program) -> tuple[str, list[str], list[str]]:
    company = {
        "business_name_legal": "Harbor Supply Co",
        "business_name_dba": "Harbor Supply",
        "identifications": [{"type": "BUSINESS_TAX_ID", "value": "12-3456789"}],
    }
    staff = [person(name, f"12345{n:04d}") for n, name in enumerate(("Hopper", "Ng", "Ruiz"))]
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
