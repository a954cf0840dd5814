"""Support for the webhook tests: a RabbitMQ vhost per test, a real `pyjit serve` with the
webhook intake configured, signed deliveries, and waits on what the consumers did."""

import asyncio
import base64
import contextlib
import hashlib
import hmac
import secrets
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest

from pyjit.config import Address, Config

GATEWAY_USERNAME = "processor"
GATEWAY_PASSWORD = "Gateway-Password-0123456789!"
WEBHOOK_USERNAME = "marqeta"
WEBHOOK_PASSWORD = "Webhook-Password-0123456789!"
WEBHOOK_SECRET = "whsec-0123456789-abcdefghij"
RABBIT_HOST = "127.0.0.1:5672"


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


WEBHOOK_AUTH = basic(WEBHOOK_USERNAME, WEBHOOK_PASSWORD)
GATEWAY_AUTH = basic(GATEWAY_USERNAME, GATEWAY_PASSWORD)


def sign(body: bytes, secret: str = WEBHOOK_SECRET, digest: Any = hashlib.sha256) -> str:
    return hmac.new(secret.encode(), body, digest).hexdigest()


def now_text() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _rabbitmqctl(*arguments: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *arguments], check=True, capture_output=True)


@pytest.fixture
def rabbitmq_url() -> Any:
    """A fresh RabbitMQ vhost for this test, deleted afterwards."""
    vhost = f"pyjit_test_{secrets.token_hex(6)}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield f"amqp://guest:guest@{RABBIT_HOST}/{vhost}"
    _rabbitmqctl("delete_vhost", vhost)


def webhook_config(database_url: str, **overrides: Any) -> Config:
    config = Config(
        database_url=database_url,
        http_addr=Address("127.0.0.1", 0),
        grpc_addr=Address("127.0.0.1", 0),
        gateway_username=GATEWAY_USERNAME,
        gateway_password=GATEWAY_PASSWORD,
        webhook_username=WEBHOOK_USERNAME,
        webhook_password=WEBHOOK_PASSWORD,
        webhook_secret=WEBHOOK_SECRET,
        expiry_interval_s=3600,
    )
    return replace(config, **overrides)


@dataclass
class Served:
    """A running `pyjit serve` in this event loop."""

    url: str
    session: aiohttp.ClientSession
    database_url: str
    stop: asyncio.Event
    task: "asyncio.Task[None]"

    async def deliver(
        self, payload: Any, *, signature: str | None = "sign", auth: str | None = WEBHOOK_AUTH
    ) -> tuple[int, Any]:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        headers = {"Content-Type": "application/json"}
        if auth is not None:
            headers["Authorization"] = auth
        if signature == "sign":
            headers["X-Marqeta-Signature"] = sign(body)
        elif signature is not None:
            headers["X-Marqeta-Signature"] = signature
        async with self.session.post(
            f"{self.url}/webhooks/marqeta", data=body, headers=headers
        ) as response:
            return response.status, orjson.loads(await response.read())

    async def load(self, program: dict[str, Any]) -> None:
        headers = {"Authorization": GATEWAY_AUTH}
        async with self.session.post(
            f"{self.url}/admin/program", data=orjson.dumps(program), headers=headers
        ) as response:
            assert response.status == 200, await response.text()

    async def jit(self, body: bytes) -> tuple[int, Any]:
        headers = {"Authorization": GATEWAY_AUTH, "Content-Type": "application/json"}
        async with self.session.post(f"{self.url}/jit", data=body, headers=headers) as response:
            return response.status, orjson.loads(await response.read())

    async def fetch(self, query: str, *arguments: Any) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.database_url)
        try:
            return list(await connection.fetch(query, *arguments))
        finally:
            await connection.close()

    async def account(self, token: str) -> tuple[int, int]:
        """(posted, held) of the account from the engine, through reconciliation."""
        headers = {"Authorization": GATEWAY_AUTH}
        async with self.session.get(
            f"{self.url}/admin/reconciliation?prefix={token}", headers=headers
        ) as response:
            result = await response.json()
        assert result["mismatches"] == 0, result
        for entry in result["accounts"]:
            if entry["account"] == token:
                return entry["engine_posted_minor"], entry["engine_held_minor"]
        raise AssertionError(f"no account {token}: {result}")

    async def wait_for(
        self, query: str, *arguments: Any, expect: Any, within_s: float = 20
    ) -> None:
        """Poll `query` until its single value equals `expect`."""
        last: Any = None
        async with asyncio.timeout(within_s):
            while True:
                rows = await self.fetch(query, *arguments)
                last = rows[0][0] if rows else None
                if last == expect:
                    return
                await asyncio.sleep(0.05)


async def start_served(config: Config, session: aiohttp.ClientSession) -> Served:
    # The gateway tests' starter: serve in this loop, wait for /ready.
    from gateway.conftest import start_gateway

    started = await start_gateway(config, session)
    return Served(started.url, session, started.database_url, started.stop, started.task)


async def stop_served(served: Served) -> None:
    served.stop.set()
    await asyncio.wait_for(served.task, 30)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Awaitable[Served]]]:
    """Start `pyjit serve` with the webhook intake; every one started is stopped after."""
    started: list[Served] = []
    async with aiohttp.ClientSession() as session:

        async def run(database_url: str, **overrides: Any) -> Served:
            served = await start_served(webhook_config(database_url, **overrides), session)
            started.append(served)
            return served

        yield run
        for served in started:
            with contextlib.suppress(Exception):
                await stop_served(served)


PROGRAM: dict[str, Any] = {
    "program": {"token": "wh", "currency_code": "USD"},
    "cardproducts": [
        {
            "token": "p1",
            "name": "Test cards",
            "config": {"jit_funding": {"programgateway_funding_source": {"enabled": True}}},
        }
    ],
    "users": [{"token": "u1", "first_name": "Test", "last_name": "One"}],
    "cards": [{"token": "c1", "user_token": "u1", "card_product_token": "p1"}],
    "gpaorders": [{"token": "g1", "user_token": "u1", "amount": "100.00", "currency_code": "USD"}],
}


def transaction(
    token: str,
    jit_token: str,
    *,
    kind: str = "authorization",
    method: str = "pgfs.authorization",
    amount: str = "10.00",
    state: str = "PENDING",
    original: str | None = None,
    created_time: str | None = None,
    timed_out: bool = False,
) -> dict[str, Any]:
    """A transaction event as the processor sends it, with its JIT funding request."""
    jit: dict[str, Any] = {"token": jit_token, "method": method, "user_token": "u1"}
    jit["amount"] = amount
    if original is not None:
        jit["original_jit_funding_token"] = original
    return {
        "token": token,
        "type": kind,
        "state": state,
        "amount": amount,
        "currency_code": "USD",
        "card_token": "c1",
        "user_token": "u1",
        "created_time": created_time or now_text(),
        "card_acceptor": {"mid": "m1", "mcc": "5411", "name": "Grocer", "country_code": "USA"},
        "gpa_order": {
            "jit_funding": jit,
            "funding": {"gateway_log": {"timed_out": timed_out}},
        },
    }
