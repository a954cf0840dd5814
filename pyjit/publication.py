"""Decisions and ledger changes published to the RabbitMQ topic exchange `transactions`.

The journal is the transactional outbox: an entry is committed in the very transaction that
makes its decision durable, so there is nothing to publish that did not happen and nothing
that happened is missed. This relay reads entries after its watermark, publishes each with
publisher confirms, and then moves the watermark, so a crash between the two publishes some
entries again (at least once; `message_id` is `journal:<seq>` for consumers to dedupe).

Routing keys: `transaction.<method>.<approved|declined>` for decisions (the method without
its `pgfs.` prefix, `authorization.capture` read as `authorization.clearing`, such as
`transaction.authorization.approved`), `transaction.<method>.voided` for voids,
`hold.expired` for hold expiries and `program.<object>` for program changes.
"""

import asyncio
import logging
from typing import Any

import aio_pika
import asyncpg
import orjson
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from pyjit.outbox import TRANSACTIONS_EXCHANGE, declare_topology

log = logging.getLogger(__name__)

BATCH = 500
IDLE_S = 0.05

UNPUBLISHED = "SELECT seq, kind, data FROM journal WHERE seq > $1 ORDER BY seq LIMIT $2"
WATERMARK = "SELECT published_seq FROM publication_state"
ADVANCE = "UPDATE publication_state SET published_seq = $1 WHERE published_seq < $1"
METHOD_NAMES = {"authorization.capture": "authorization.clearing"}


def routing_key(kind: str, entry: dict[str, Any]) -> str:
    """The topic a journal entry is published under."""
    if kind == "expiry":
        return "hold.expired"
    if kind == "program":
        return f"program.{entry.get('object', 'object')}"
    method = str(entry.get("method") or "unknown").removeprefix("pgfs.")
    method = METHOD_NAMES.get(method, method)
    if kind == "void":
        return f"transaction.{method}.voided"
    return f"transaction.{method}.{'approved' if entry.get('approved') else 'declined'}"


class Publisher:
    """The relay from the journal to the `transactions` exchange."""

    def __init__(self, url: str, pool: asyncpg.Pool) -> None:
        self._url = url
        self._pool = pool
        self.published_seq = 0

    async def run(self) -> None:
        """Publish forever (cancel to stop); reconnects after broker or database trouble."""
        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=0.1, max=5.0),
            retry=retry_if_exception_type(
                (OSError, aio_pika.exceptions.AMQPError, asyncpg.PostgresError)
            ),
            before_sleep=lambda state: log.warning(
                "decision relay interrupted: %r", state.outcome and state.outcome.exception()
            ),
        )
        await retrying(self._publish_forever)

    async def _publish_forever(self) -> None:
        connection = await aio_pika.connect_robust(self._url)
        try:
            channel = await connection.channel(publisher_confirms=True)
            await declare_topology(channel)
            exchange = await channel.get_exchange(TRANSACTIONS_EXCHANGE)
            self.published_seq = await self._pool.fetchval(WATERMARK)
            while True:
                if not await self._publish_batch(exchange):
                    await asyncio.sleep(IDLE_S)
        finally:
            await connection.close()

    async def _publish_batch(self, exchange: aio_pika.abc.AbstractExchange) -> int:
        rows = await self._pool.fetch(UNPUBLISHED, self.published_seq, BATCH)
        if not rows:
            return 0
        await asyncio.gather(*(self._publish(exchange, row) for row in rows))
        last = rows[-1]["seq"]
        await self._pool.execute(ADVANCE, last)
        self.published_seq = last
        return len(rows)

    @staticmethod
    async def _publish(exchange: aio_pika.abc.AbstractExchange, row: asyncpg.Record) -> None:
        data = bytes(row["data"])
        entry = orjson.loads(data)
        message = aio_pika.Message(
            data,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=f"journal:{row['seq']}",
            type=row["kind"],
        )
        await exchange.publish(message, routing_key=routing_key(row["kind"], entry))
