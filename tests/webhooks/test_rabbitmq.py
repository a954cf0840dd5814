"""The intake and consumers with RabbitMQ (a vhost per test): it proves the 200 comes after
the broker confirmed each event, that a delivery repeated three times (two at once) has one
effect, that the broker itself dead-letters a poison event after 5 deliveries while the
events behind it are applied, that a consumer killed after the ledger effect but before its
acknowledgement gets the event redelivered and applied once, and that decisions are
published on the `transactions` exchange with routing keys by outcome."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import aio_pika
import orjson
from wh_support import PROGRAM, Served, transaction, webhook_config

from pyjit.config import Address, Config
from pyjit.consumers import Reconciler
from pyjit.database import create_pool
from pyjit.outbox import DEAD_QUEUE, RabbitQueue
from pyjit.webhooks import Delivery, Event
from pyjit.webhooks_runtime import RemoteLedger

Start = Callable[..., Awaitable[Served]]
APPLIED = "SELECT outcome FROM webhook_events WHERE event_token = $1"


async def _served(database_url: str, rabbitmq_url: str, start: Start) -> Served:
    served = await start(database_url, rabbitmq_url=rabbitmq_url)
    await served.load(PROGRAM)
    return served


async def test_repeated_delivery_through_the_broker_has_one_effect(
    database_url: str, rabbitmq_url: str, start: Start
) -> None:
    served = await _served(database_url, rabbitmq_url, start)
    body = orjson.dumps({"transactions": [transaction("t1", "j1", amount="7.00")]})
    results = await asyncio.gather(served.deliver(body), served.deliver(body))
    assert [status for status, _ in results] == [200, 200]
    assert (await served.deliver(body))[0] == 200

    await served.wait_for(APPLIED, "t1", expect="stand-in-applied")
    published = "SELECT count(*) FROM webhook_deliveries WHERE published_at IS NOT NULL"
    await served.wait_for(published, expect=3)
    assert await served.account("u1") == (10_000, 700)
    journal = await served.fetch("SELECT count(*) FROM journal WHERE token = 'j1'")
    assert journal[0][0] == 1


async def test_poison_event_goes_to_the_dead_letter_queue_after_five_deliveries(
    database_url: str, rabbitmq_url: str, start: Start
) -> None:
    served = await _served(database_url, rabbitmq_url, start)
    poison = transaction("t1", "j1", amount="not-a-number")
    later = [transaction(f"t{n}", f"j{n}", amount="1.00") for n in range(2, 5)]
    assert (await served.deliver({"transactions": [poison, *later]}))[0] == 200

    for event in later:
        await served.wait_for(APPLIED, event["token"], expect="stand-in-applied")
    dead = await _dead_letter(rabbitmq_url)
    assert dead.message_id == "t1"
    assert dead.headers["x-first-death-reason"] == "delivery_limit"
    assert await served.fetch(APPLIED, "t1") == []
    assert await served.account("u1") == (10_000, 300)
    metrics = await _metrics(served)
    assert 'pyjit_webhook_dead_letters_total{type="event"} 1.0' in metrics


async def _dead_letter(rabbitmq_url: str) -> Any:
    connection = await aio_pika.connect_robust(rabbitmq_url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(DEAD_QUEUE)
        for _ in range(400):
            message = await queue.get(fail=False)
            if message is not None:
                await message.ack()
                return message
            await asyncio.sleep(0.05)
        raise AssertionError("nothing reached the dead-letter queue in 20 s")
    finally:
        await connection.close()


async def _metrics(served: Served) -> str:
    async with served.session.get(f"{served.url}/metrics") as response:
        return await response.text()


class Killed(Exception):
    """Stands for the process dying between the ledger effect and the acknowledgement."""


async def test_consumer_killed_before_ack_gets_the_event_again_and_applies_it_once(
    database_url: str, rabbitmq_url: str, start: Start
) -> None:
    # This gateway's own consumers read the PostgreSQL queue; the test runs the broker's.
    served = await start(database_url)
    await served.load(PROGRAM)
    config = _worker_config(served)
    pool = await create_pool(database_url)
    first = await RabbitQueue(rabbitmq_url, pool, prefetch=1).connect()
    second: RabbitQueue | None = None
    try:
        event = Event("t1", "transaction.authorization", orjson.dumps(transaction("t1", "j1")))
        await first.enqueue(Delivery(event.body, None, [event]))

        reconciler = Reconciler(pool, RemoteLedger(config, served.session, pool))
        effect_done = asyncio.Event()

        async def dies_after_the_effect(received: Event) -> None:
            await reconciler._apply(received, orjson.loads(received.body))
            effect_done.set()
            await asyncio.Future()

        consuming = asyncio.create_task(first.consume(dies_after_the_effect, lambda _: None))
        await asyncio.wait_for(effect_done.wait(), 20)
        assert await served.account("u1") == (10_000, 1_000)
        await first.close()
        consuming.cancel()
        await asyncio.gather(consuming, return_exceptions=True)

        second = await RabbitQueue(rabbitmq_url, pool).connect()
        task = asyncio.create_task(second.consume(reconciler.handle, lambda _: None))
        applied = "SELECT count(*) FROM webhook_events WHERE event_token = 't1'"
        await served.wait_for(applied, expect=1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert await served.account("u1") == (10_000, 1_000)
        journal = await served.fetch("SELECT count(*) FROM journal WHERE token = 'j1'")
        assert journal[0][0] == 1
    finally:
        if second is not None:
            await second.close()
        await pool.close()


def _worker_config(served: Served) -> Config:
    host, port = served.url.removeprefix("http://").rsplit(":", 1)
    return replace(webhook_config(served.database_url), http_addr=Address(host, int(port)))


async def test_decisions_are_published_with_routing_keys_by_outcome(
    database_url: str, rabbitmq_url: str, start: Start
) -> None:
    served = await _served(database_url, rabbitmq_url, start)
    connection = await aio_pika.connect_robust(rabbitmq_url)
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange("transactions")
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, "transaction.authorization.*")

        approved = transaction("t1", "a1", amount="1.00")
        declined = transaction("t2", "d1", amount="5000.00")
        assert (await served.jit(orjson.dumps(approved)))[0] == 200
        assert (await served.jit(orjson.dumps(declined)))[0] == 402

        seen: dict[str, str] = {}
        async with asyncio.timeout(20):
            while len(seen) < 2:
                message = await queue.get(fail=False)
                if message is None:
                    await asyncio.sleep(0.05)
                    continue
                await message.ack()
                seen[orjson.loads(message.body)["token"]] = message.routing_key or ""
        assert seen == {
            "a1": "transaction.authorization.approved",
            "d1": "transaction.authorization.declined",
        }
    finally:
        await connection.close()
