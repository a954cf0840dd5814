"""The processor's webhooks at the door: `POST /webhooks/marqeta`.

A delivery is checked in the order that costs an attacker the most and us the least: Basic
credentials, then the `X-Marqeta-Signature` HMAC over the raw bytes (both compared in
constant time), and only then is the body parsed. A delivery is answered 200 only after it
is stored and every event in it is queued durably (RabbitMQ with publisher confirms, or the
PostgreSQL queue table), so a 200 never loses an event; anything else makes the processor
send it again, and the consumers dedupe on the event token.
"""

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg
from aiohttp import web

from pyjit.clock import Clock
from services.marqeta import codec

log = logging.getLogger(__name__)

ROUTE = "/webhooks/marqeta"
SIGNATURE_HEADER = "X-Marqeta-Signature"
DELIVERY_BODY_MAX = 1024 * 1024
EVENTS_PER_DELIVERY_MAX = 10
TOKEN_LENGTH_MAX = 36
# Clocks differ; an event stamped a little ahead of ours is not a forgery.
FUTURE_SKEW_S = 300.0
# Hex digest length -> hash: SHA-256 on newer configurations, SHA-1 on older ones; both are
# accepted so a program can switch without a window of refused deliveries.
SIGNATURE_HASHES = {64: hashlib.sha256, 40: hashlib.sha1}
# Category key of a delivery body -> base of its event types.
CATEGORIES = {
    "transactions": "transaction",
    "cardtransitions": "cardtransition",
    "cards": "cardtransition",
    "usertransitions": "usertransition",
    "businesstransitions": "businesstransition",
    "chargebacktransitions": "chargebacktransition",
    "digitalwallettokentransitions": "digitalwallettokentransition",
}


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a delivery: its token, its type (`transaction.authorization`), and its
    own JSON with amounts written exactly as they arrived."""

    token: str
    event_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Delivery:
    body: bytes
    signature: str | None
    events: list[Event]


class Refused(Exception):
    """A delivery we will not take, with the status and the field to name."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message


class EventQueue(Protocol):
    """Where accepted deliveries go; `enqueue` returns only once they are durable."""

    async def enqueue(self, delivery: Delivery) -> None: ...


def signature_valid(secret: str, body: bytes, presented: str) -> bool:
    """True when `presented` is the hex HMAC of `body` under `secret` (SHA-256 or SHA-1).

    The hash is chosen by the digest's length, which is public; the comparison of the
    digest itself is constant-time."""
    candidate = presented.strip().lower().encode("ascii", "replace")
    digest = SIGNATURE_HASHES.get(len(candidate))
    if digest is None:
        return False
    expected = hmac.new(secret.encode(), body, digest).hexdigest().encode()
    return hmac.compare_digest(expected, candidate)


def event_type(base: str, event: dict[str, Any]) -> str:
    """`transaction.authorization`, `cardtransition.state.activated`, `usertransition.active`."""
    detail = event.get("type") if base in ("transaction", "cardtransition") else None
    if detail is None:
        detail = event.get("status") or event.get("state") or "event"
    return f"{base}.{str(detail).lower()}"


def parse_delivery(body: bytes, signature: str | None, now_ms: int, max_age_s: float) -> Delivery:
    """The events of a delivery, or `Refused` naming the first field that is wrong."""
    try:
        document = codec.decode(body)
    except codec.CodecError as error:
        raise Refused(400, "$", str(error)) from None
    if not isinstance(document, dict) or not document:
        raise Refused(400, "$", "a delivery is a JSON object keyed by event category")
    events: list[Event] = []
    for category, items in document.items():
        if category == "pings":
            continue
        base = CATEGORIES.get(category)
        if base is None:
            raise Refused(400, category, f"unknown event category {category!r}")
        if not isinstance(items, list):
            raise Refused(400, category, "must be a list of events")
        for index, item in enumerate(items):
            path = f"{category}[{index}]"
            events.append(_event(base, item, path, now_ms, max_age_s))
    if len(events) > EVENTS_PER_DELIVERY_MAX:
        raise Refused(400, "$", f"at most {EVENTS_PER_DELIVERY_MAX} events per delivery")
    return Delivery(body, signature, events)


def _event(base: str, item: object, path: str, now_ms: int, max_age_s: float) -> Event:
    if not isinstance(item, dict):
        raise Refused(400, path, "an event must be a JSON object")
    token = item.get("token")
    if not isinstance(token, str) or not 1 <= len(token) <= TOKEN_LENGTH_MAX:
        raise Refused(400, f"{path}.token", f"must be text of 1-{TOKEN_LENGTH_MAX} characters")
    created = item.get("created_time")
    if created is not None:
        _check_age(created, f"{path}.created_time", now_ms, max_age_s)
    return Event(token, event_type(base, item), codec.encode(item))


def _check_age(created: object, path: str, now_ms: int, max_age_s: float) -> None:
    try:
        moment = datetime.fromisoformat(created) if isinstance(created, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise Refused(400, path, "must be an ISO 8601 time")
    if moment.tzinfo is None:
        raise Refused(400, path, "must carry a time zone")
    age_s = now_ms / 1000 - moment.timestamp()
    if age_s > max_age_s:
        raise Refused(422, path, f"stale: {age_s:.0f} s old, the limit is {max_age_s:.0f} s")
    if age_s < -FUTURE_SKEW_S:
        raise Refused(422, path, f"{-age_s:.0f} s in the future")


def _credentials_valid(request: web.Request, expected: bytes) -> bool:
    presented = request.headers.get("Authorization", "").encode("latin-1", "replace")
    scheme, _, credentials = presented.partition(b" ")
    # The scheme name is case-insensitive (RFC 7617); the credentials are not.
    return scheme.lower() == b"basic" and hmac.compare_digest(
        b"Basic " + credentials.strip(), expected
    )


def _answer(status: int, payload: dict[str, Any]) -> web.Response:
    response = web.Response(status=status, body=codec.encode(payload))
    response.content_type = "application/json"
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="pyjit webhooks"'
    return response


@dataclass
class IntakeSettings:
    expected_authorization: bytes | None
    secret: str
    max_age_s: float


def intake_handler(
    settings: IntakeSettings,
    clock: Clock,
    queue: Callable[[], EventQueue | None],
    observe: Callable[[str, float], None] = lambda outcome, seconds: None,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler; `queue` gives the queue once it is connected (None before)."""

    async def intake(request: web.Request) -> web.Response:
        started_ns = clock.monotonic_ns()
        response = await _intake(request, settings, clock, queue())
        observe(str(response.status), (clock.monotonic_ns() - started_ns) / 1e9)
        return response

    return intake


async def _intake(
    request: web.Request, settings: IntakeSettings, clock: Clock, queue: EventQueue | None
) -> web.Response:
    if settings.expected_authorization is None:
        return _answer(503, {"error": "webhook intake is not configured"})
    if not _credentials_valid(request, settings.expected_authorization):
        return _answer(401, {"error": "missing or wrong Basic credentials"})
    if request.content_length is not None and request.content_length > DELIVERY_BODY_MAX:
        return _answer(413, {"error": f"body over {DELIVERY_BODY_MAX} bytes"})
    body = await request.read()
    signature = request.headers.get(SIGNATURE_HEADER)
    if settings.secret and signature is None:
        return _answer(401, {"error": f"missing {SIGNATURE_HEADER}"})
    if settings.secret and not signature_valid(settings.secret, body, signature or ""):
        return _answer(401, {"error": f"{SIGNATURE_HEADER} does not match the body"})

    try:
        delivery = parse_delivery(body, signature, clock.now_ms(), settings.max_age_s)
    except Refused as refused:
        log.warning("webhook delivery refused: %s: %s", refused.field, refused.message)
        return _answer(refused.status, {"error": refused.message, "field": refused.field})
    if not delivery.events:
        return _answer(200, {"accepted": 0})

    if queue is None:
        return _answer(503, {"error": "the event queue is not connected yet"})
    try:
        await queue.enqueue(delivery)
    except (OSError, TimeoutError, asyncpg.PostgresError, QueueUnavailable) as error:
        log.error("webhook delivery not queued, the processor will retry: %r", error)
        return _answer(503, {"error": "the event queue is unavailable; retry"})
    return _answer(200, {"accepted": len(delivery.events)})


class QueueUnavailable(RuntimeError):
    """The queue refused or did not confirm an event."""
