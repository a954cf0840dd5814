"""Webhook delivery as the processor does it: batched, signed, retried in powers of four.

Events for one webhook are queued and sent in batches of up to ten events of one category
(`{"transactions": [...]}`). A body is signed with `X-Marqeta-Signature`, the hex HMAC of
the exact bytes sent, keyed by the webhook's secret. Anything but HTTP 200 is retried ten
times, after 4 s, 16 s, 64 s, ... (4**n), which `backoff_scale` shrinks for tests.
"""

import asyncio
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from services.marqeta import codec
from services.marqeta.auth import basic_authorization

SIGNATURE_HEADER = "X-Marqeta-Signature"
SIGNATURE_ALGORITHMS = {"HMAC_SHA_256": hashlib.sha256, "HMAC_SHA_1": hashlib.sha1}


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    batch_size: int = 10
    retries: int = 10
    backoff_scale: float = 1.0
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how one webhook is delivered, as configured when the event was queued."""

    webhook_token: str
    url: str
    username: str
    password: str
    secret: str | None
    signature_algorithm: str
    custom_header: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One POST of one batch, kept so tests and demos can see what was sent."""

    webhook_token: str
    category: str
    event_count: int
    status: int | None


class EndpointRefused(Exception):
    """The endpoint answered something other than 200 (or nothing), so the batch is retried."""


def sign(secret: str, body: bytes, algorithm: str = "HMAC_SHA_256") -> str:
    """The `X-Marqeta-Signature` value for `body`."""
    return hmac.new(secret.encode(), body, SIGNATURE_ALGORITHMS[algorithm]).hexdigest()


class WebhookDispatcher:
    """Queues events per webhook and delivers them in the background."""

    def __init__(self, policy: DeliveryPolicy, http: Callable[[], aiohttp.ClientSession]) -> None:
        self._policy = policy
        self._http = http
        self._queues: dict[str, asyncio.Queue[tuple[Endpoint, str, Any]]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._deliveries: set[asyncio.Task[bool]] = set()
        self.attempts: list[DeliveryAttempt] = []

    def publish(self, endpoint: Endpoint, category: str, event: Any) -> None:
        """Queue one event for one webhook; it is sent with others queued alongside it."""
        token = endpoint.webhook_token
        if token not in self._queues:
            self._queues[token] = asyncio.Queue()
            self._workers[token] = asyncio.create_task(self._work(self._queues[token]))
        self._queues[token].put_nowait((endpoint, category, event))

    async def _work(self, queue: asyncio.Queue[tuple[Endpoint, str, Any]]) -> None:
        while True:
            pending = [await queue.get()]
            # Let the handler that queued this event queue its siblings, so they share a batch.
            await asyncio.sleep(0)
            while not queue.empty():
                pending.append(queue.get_nowait())
            for endpoint, category, events in self._batches(pending):
                task = asyncio.create_task(self.deliver(endpoint, category, events))
                self._deliveries.add(task)
                task.add_done_callback(self._deliveries.discard)
            for _ in pending:
                queue.task_done()

    def _batches(
        self, pending: list[tuple[Endpoint, str, Any]]
    ) -> list[tuple[Endpoint, str, list[Any]]]:
        by_category: dict[str, tuple[Endpoint, list[Any]]] = {}
        for endpoint, category, event in pending:
            by_category.setdefault(category, (endpoint, []))[1].append(event)
        size = self._policy.batch_size
        return [
            (endpoint, category, events[start : start + size])
            for category, (endpoint, events) in by_category.items()
            for start in range(0, len(events), size)
        ]

    async def deliver(self, endpoint: Endpoint, category: str, events: list[Any]) -> bool:
        """Send one batch until it is answered 200 or the retries run out."""
        body = codec.encode({category: events})
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._policy.retries + 1),
            wait=wait_exponential(multiplier=4 * self._policy.backoff_scale, exp_base=4),
            retry=retry_if_exception_type(EndpointRefused),
            reraise=True,
        )
        try:
            await retrying(self._post, endpoint, category, len(events), body)
        except EndpointRefused:
            return False
        return True

    async def _post(self, endpoint: Endpoint, category: str, count: int, body: bytes) -> None:
        status = await self.post_once(endpoint, body)
        self.attempts.append(DeliveryAttempt(endpoint.webhook_token, category, count, status))
        if status != 200:
            raise EndpointRefused(f"{endpoint.url} answered {status}")

    async def post_once(self, endpoint: Endpoint, body: bytes) -> int | None:
        """POST `body` once; the status, or None when no answer came."""
        headers = {
            **endpoint.custom_header,
            "Content-Type": "application/json",
            "Authorization": basic_authorization(endpoint.username, endpoint.password),
        }
        if endpoint.secret is not None:
            headers[SIGNATURE_HEADER] = sign(endpoint.secret, body, endpoint.signature_algorithm)
        try:
            async with self._http().post(
                endpoint.url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._policy.timeout_s),
            ) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def drain(self) -> None:
        """Wait until every queued event has been delivered or has given up."""
        while True:
            for queue in list(self._queues.values()):
                await queue.join()
            if not self._deliveries:
                return
            await asyncio.gather(*self._deliveries, return_exceptions=True)

    async def close(self) -> None:
        """Stop delivering; events still queued or retrying are dropped."""
        tasks = [*self._workers.values(), *self._deliveries]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()
        self._queues.clear()
