"""The queues behind the webhook intake: RabbitMQ when `RABBITMQ_URL` is set, else a
PostgreSQL table.

Both keep the same promises. `enqueue` returns only when the delivery's raw bytes are stored
and each of its events is durable in the queue. A consumer's handler either returns (the
event is done) or raises (the event is tried again); after `ATTEMPTS_MAX` attempts the
event goes to the dead-letter queue and the events behind it carry on. A consumer that dies
before it acknowledges gives the event back, and that counts as an attempt.

RabbitMQ topology: the topic exchange `webhooks` (routing key = event type, such as
`transaction.authorization`), the durable quorum queue `webhooks.ledger` bound to all of
it, whose `x-delivery-limit` makes the broker itself count attempts and dead-letter to the
exchange `webhooks.dead` and its quorum queue `webhooks.dead`. Decisions go out on the topic
exchange `transactions` (see pyjit/publication.py).
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from pyjit.webhooks import Delivery, Event, QueueUnavailable

log = logging.getLogger(__name__)

ATTEMPTS_MAX = 5
WEBHOOKS_EXCHANGE = "webhooks"
LEDGER_QUEUE = "webhooks.ledger"
DEAD_EXCHANGE = "webhooks.dead"
DEAD_QUEUE = "webhooks.dead"
TRANSACTIONS_EXCHANGE = "transactions"
PUBLISH_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 2.0
IDLE_POLL_MAX_S = 1.0

Handler = Callable[[Event], Awaitable[None]]
Observer = Callable[[str], None]

STORE_DELIVERY = """
INSERT INTO webhook_deliveries (signature, event_count, body, published_at)
VALUES ($1, $2, $3, CASE WHEN $4 THEN now() END)
RETURNING id
"""

QUEUE_EVENTS = """
INSERT INTO webhook_queue (delivery_id, event_token, event_type, body)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bytea[])
"""

# Claiming moves `available_at` forward by the lease, so the claim is the lock and a dead
# consumer's rows come back by themselves.
CLAIM = """
UPDATE webhook_queue q SET attempts = q.attempts + 1,
       available_at = now() + make_interval(secs => $2)
FROM (SELECT id FROM webhook_queue
      WHERE done_at IS NULL AND dead_at IS NULL AND available_at <= now()
      ORDER BY available_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) ready
WHERE q.id = ready.id
RETURNING q.id, q.event_token, q.event_type, q.body, q.attempts
"""

DONE = "UPDATE webhook_queue SET done_at = now() WHERE id = $1"

FAILED = """
UPDATE webhook_queue
SET last_error = $3,
    dead_at = CASE WHEN $2::int >= $4::int THEN now() END,
    available_at = now() + make_interval(secs => $5::float8 * power(2, $2::int - 1))
WHERE id = $1
"""


class PostgresQueue:
    """The queue as a table: for a deployment without RabbitMQ, and for tests."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        lease_s: float = 30.0,
        retry_wait_s: float = 0.05,
        poll_s: float = 0.05,
    ) -> None:
        self._pool = pool
        self._lease_s = lease_s
        self._retry_wait_s = retry_wait_s
        self._poll_s = poll_s
        self._wakeup = asyncio.Event()

    async def enqueue(self, delivery: Delivery) -> None:
        events = delivery.events
        async with self._pool.acquire() as connection, connection.transaction():
            delivery_id = await connection.fetchval(
                STORE_DELIVERY, delivery.signature, len(events), delivery.body, True
            )
            await connection.execute(
                QUEUE_EVENTS,
                delivery_id,
                [event.token for event in events],
                [event.event_type for event in events],
                [event.body for event in events],
            )
        self._wakeup.set()

    async def depth(self) -> int:
        """Events waiting or in flight."""
        waiting: int = await self._pool.fetchval(
            "SELECT count(*) FROM webhook_queue WHERE done_at IS NULL AND dead_at IS NULL"
        )
        return waiting

    async def consume(self, handler: Handler, observe: Observer, batch: int = 32) -> None:
        """Run `handler` on every event, forever (cancel to stop).

        An idle queue is polled less and less often, down to once every IDLE_POLL_MAX_S;
        the intake of this process wakes it at once, so only events queued by another
        process (an edge) wait for the poll."""
        idle_s = self._poll_s
        while True:
            try:
                rows = await self._pool.fetch(CLAIM, batch, self._lease_s)
                await asyncio.gather(*(self._run(handler, observe, row) for row in rows))
            except (OSError, asyncpg.PostgresError) as error:
                # The database is away. Claimed rows come back when their lease ends.
                log.warning("webhook queue unreachable: %r", error)
                await asyncio.sleep(IDLE_POLL_MAX_S)
                continue
            if rows:
                idle_s = self._poll_s
                continue
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), idle_s)
            idle_s = min(idle_s * 2, IDLE_POLL_MAX_S)

    async def _run(self, handler: Handler, observe: Observer, row: asyncpg.Record) -> None:
        event = Event(row["event_token"], row["event_type"], bytes(row["body"]))
        try:
            await handler(event)
        except Exception as error:
            attempts = row["attempts"]
            dead = attempts >= ATTEMPTS_MAX
            observe("dead_lettered" if dead else "retried")
            log.warning("event %s failed (attempt %d): %r", event.token, attempts, error)
            await self._pool.execute(
                FAILED, row["id"], attempts, repr(error)[:500], ATTEMPTS_MAX, self._retry_wait_s
            )
            return
        observe("done")
        await self._pool.execute(DONE, row["id"])


async def declare_topology(channel: AbstractChannel) -> tuple[AbstractExchange, AbstractQueue]:
    """Declare every exchange and queue; idempotent, so each process may do it at start."""
    webhooks = await channel.declare_exchange(
        WEBHOOKS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
    )
    dead = await channel.declare_exchange(DEAD_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    await channel.declare_exchange(TRANSACTIONS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    dead_queue = await channel.declare_queue(
        DEAD_QUEUE, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dead_queue.bind(dead, "#")
    # The broker dead-letters a message delivered more than `x-delivery-limit` times without
    # an acknowledgement, so a limit of ATTEMPTS_MAX - 1 allows ATTEMPTS_MAX deliveries.
    ledger = await channel.declare_queue(
        LEDGER_QUEUE,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": ATTEMPTS_MAX - 1,
            "x-dead-letter-exchange": DEAD_EXCHANGE,
        },
    )
    await ledger.bind(webhooks, "#")
    return webhooks, ledger


class RabbitQueue:
    """The queue in RabbitMQ; the raw delivery is still stored in PostgreSQL first."""

    def __init__(self, url: str, pool: asyncpg.Pool, prefetch: int = 32) -> None:
        self._url = url
        self._pool = pool
        self._prefetch = prefetch
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None

    async def connect(self) -> "RabbitQueue":
        self._connection = await aio_pika.connect_robust(self._url)
        channel = await self._connection.channel(publisher_confirms=True)
        self._exchange, _ = await declare_topology(channel)
        return self

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def depth(self) -> int:
        """Messages ready in the ledger queue (unacknowledged ones are not counted)."""
        assert self._connection is not None, "connect() first"
        channel = await self._connection.channel()
        try:
            queue = await channel.declare_queue(LEDGER_QUEUE, passive=True)
            return queue.declaration_result.message_count or 0
        finally:
            await channel.close()

    async def enqueue(self, delivery: Delivery) -> None:
        exchange = self._exchange
        if exchange is None:
            raise QueueUnavailable("not connected to RabbitMQ")
        async with self._pool.acquire() as connection:
            delivery_id = await connection.fetchval(
                STORE_DELIVERY, delivery.signature, len(delivery.events), delivery.body, False
            )
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await asyncio.gather(*(self._publish(exchange, e) for e in delivery.events))
        except (aio_pika.exceptions.AMQPError, TimeoutError) as error:
            raise QueueUnavailable(f"RabbitMQ did not confirm: {error!r}") from error
        await self._pool.execute(
            "UPDATE webhook_deliveries SET published_at = now() WHERE id = $1", delivery_id
        )

    @staticmethod
    async def _publish(exchange: AbstractExchange, event: Event) -> None:
        message = aio_pika.Message(
            event.body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=event.token,
            type=event.event_type,
        )
        # With publisher confirms on, this returns once the broker has the message durably;
        # `mandatory` turns "no queue bound" into an error instead of a silent drop.
        await exchange.publish(message, routing_key=event.event_type, mandatory=True)

    async def consume(self, handler: Handler, observe: Observer) -> None:
        """Run `handler` on every event, forever (cancel to stop)."""
        assert self._connection is not None, "connect() first"
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        _, queue = await declare_topology(channel)

        async def on_message(message: AbstractIncomingMessage) -> None:
            await _handle_message(message, handler, observe)

        tag = await queue.consume(on_message)
        try:
            await asyncio.Future()
        finally:
            # After the connection closed there is nothing to cancel, and waiting for the
            # broker's answer would hang the shutdown.
            if not channel.is_closed:
                with contextlib.suppress(aio_pika.exceptions.AMQPError, TimeoutError):
                    async with asyncio.timeout(CLOSE_TIMEOUT_S):
                        await queue.cancel(tag)
                        await channel.close()


async def _handle_message(
    message: AbstractIncomingMessage, handler: Handler, observe: Observer
) -> None:
    event = Event(message.message_id or "", message.type or "", message.body)
    try:
        await handler(event)
    except Exception as error:
        count = _delivery_count(message.headers)
        dead = count + 1 >= ATTEMPTS_MAX
        observe("dead_lettered" if dead else "retried")
        log.warning("event %s failed (attempt %d): %r", event.token, count + 1, error)
        # The broker counts this return; past the limit it dead-letters the message.
        await message.nack(requeue=True)
        return
    observe("done")
    await message.ack()


def _delivery_count(headers: dict[str, Any]) -> int:
    count = headers.get("x-delivery-count", 0)
    return count if isinstance(count, int) else 0
