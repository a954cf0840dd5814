"""`POST /webhooks/marqeta` on a real `pyjit serve`: it proves that credentials and the
signature are checked before the body is read as JSON, that every wrong, short or missing
signature is a 401 (never a 500), that stale, future and malformed deliveries get a precise
4xx naming the field, and that an accepted delivery is stored raw and its events queued
before the 200 (PostgreSQL queue here; RabbitMQ in test_rabbitmq.py)."""

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from wh_support import PROGRAM, Served, basic, sign, transaction

from pyjit.webhooks import signature_valid

Start = Callable[..., Awaitable[Served]]
SECRET = "whsec-0123456789-abcdefghij"


def test_signature_accepts_sha256_and_sha1_and_nothing_else() -> None:
    body = b'{"transactions": []}'
    assert signature_valid(SECRET, body, sign(body))
    assert signature_valid(SECRET, body, sign(body, digest=hashlib.sha1))
    assert signature_valid(SECRET, body, sign(body).upper())
    assert not signature_valid(SECRET, body + b" ", sign(body))
    assert not signature_valid(SECRET, body, sign(body)[:-1])
    assert not signature_valid(SECRET, body, "")
    assert not signature_valid(SECRET, body, "é" * 64)


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"signature": "0" * 64}, "does not match"),
        ({"signature": "abc"}, "does not match"),
        ({"signature": "z" * 64}, "does not match"),
        ({"signature": None}, "missing X-Marqeta-Signature"),
        ({"auth": None}, "Basic"),
        ({"auth": basic("marqeta", "wrong-password")}, "Basic"),
        ({"auth": "Bearer token"}, "Basic"),
    ],
)
async def test_bad_credentials_or_signature_are_401(
    database_url: str, start: Start, headers: dict[str, Any], why: str
) -> None:
    served = await start(database_url)
    # The body is not even JSON: a 401 proves nothing was parsed before the checks.
    status, answer = await served.deliver(b"{not json", **headers)
    assert status == 401
    assert why in answer["error"]
    assert await served.fetch("SELECT * FROM webhook_deliveries") == []


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        (b"{not json", 400, "$"),
        ([], 400, "$"),
        ({"parcels": []}, 400, "parcels"),
        ({"transactions": {}}, 400, "transactions"),
        ({"transactions": [1]}, 400, "transactions[0]"),
        ({"transactions": [{"type": "authorization"}]}, 400, "transactions[0].token"),
        ({"transactions": [{"token": "x" * 37}]}, 400, "transactions[0].token"),
        ({"transactions": [{"token": "t", "created_time": "yesterday"}]}, 400, "created_time"),
        (
            {"transactions": [{"token": "t", "created_time": "2020-01-01T00:00:00"}]},
            400,
            "created_time",
        ),
        (
            {"transactions": [{"token": "t", "created_time": "2020-01-01T00:00:00Z"}]},
            422,
            "created_time",
        ),
        (
            {"transactions": [{"token": "t", "created_time": "2999-01-01T00:00:00Z"}]},
            422,
            "created_time",
        ),
        ({"transactions": [{"token": f"t{n}"} for n in range(11)]}, 400, "$"),
    ],
)
async def test_malformed_and_stale_deliveries_name_the_field(
    database_url: str, start: Start, payload: Any, status: int, field: str
) -> None:
    served = await start(database_url)
    got, answer = await served.deliver(payload)
    assert got == status, answer
    assert field in answer["field"]
    assert await served.fetch("SELECT * FROM webhook_deliveries") == []


async def test_a_ping_is_answered_and_not_queued(database_url: str, start: Start) -> None:
    served = await start(database_url)
    status, answer = await served.deliver({"pings": [{"token": "marqeta", "payload": "x"}]})
    assert (status, answer) == (200, {"accepted": 0})
    assert await served.fetch("SELECT * FROM webhook_queue") == []


async def test_accepted_delivery_is_stored_raw_and_queued(database_url: str, start: Start) -> None:
    served = await start(database_url)
    await served.load(PROGRAM)
    events = [transaction("t1", "j1"), transaction("t2", "j2", amount="0.10")]
    body = orjson.dumps({"transactions": events})
    status, answer = await served.deliver(body)
    assert (status, answer) == (200, {"accepted": 2})

    stored = await served.fetch("SELECT body, signature, event_count FROM webhook_deliveries")
    assert [(bytes(r["body"]), r["signature"], r["event_count"]) for r in stored] == [
        (body, sign(body), 2)
    ]
    queued = await served.fetch("SELECT event_token, event_type FROM webhook_queue ORDER BY id")
    assert [tuple(r) for r in queued] == [
        ("t1", "transaction.authorization"),
        ("t2", "transaction.authorization"),
    ]


async def test_sha1_signature_is_accepted(database_url: str, start: Start) -> None:
    served = await start(database_url)
    body = orjson.dumps({"usertransitions": [{"token": "ut1", "status": "ACTIVE"}]})
    status, _ = await served.deliver(body, signature=sign(body, digest=hashlib.sha1))
    assert status == 200


async def test_without_credentials_configured_the_intake_is_closed(
    database_url: str, start: Start
) -> None:
    served = await start(database_url, webhook_username="", webhook_password="", webhook_secret="")
    status, answer = await served.deliver({"transactions": []})
    assert status == 503
    assert "not configured" in answer["error"]
