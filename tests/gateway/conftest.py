"""Fixtures for the gateway tests: an in-process `serve` on a random port against a fresh
database, a small program, and builders of the processor's JIT messages."""

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest

from pyjit.clock import SystemClock
from pyjit.config import Address, Config

USERNAME = "processor"
PASSWORD = "Test-Secret-Password-123!"
AUTH = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()


def gateway_config(database_url: str, **overrides: Any) -> Config:
    config = Config(
        database_url=database_url,
        http_addr=Address("127.0.0.1", 0),
        # The process serves gRPC too; port 0 keeps concurrent test runs from colliding.
        grpc_addr=Address("127.0.0.1", 0),
        gateway_username=USERNAME,
        gateway_password=PASSWORD,
        expiry_interval_s=3600,
    )
    return replace(config, **overrides)


def jit_body(
    token: str,
    amount: str | int | float = "1.00",
    method: str = "pgfs.authorization",
    card: str = "c1",
    user: str = "u1",
    original: str | None = None,
    mcc: str = "5411",
    created_time: str = "2025-03-01T12:00:00Z",
) -> bytes:
    funding: dict[str, Any] = {
        "token": token,
        "method": method,
        "user_token": user,
        "amount": amount,
    }
    if original:
        funding["original_jit_funding_token"] = original
    return orjson.dumps(
        {
            "token": f"t-{token}",
            "type": "authorization",
            "state": "PENDING",
            "amount": amount,
            "currency_code": "USD",
            "card_token": card,
            "user_token": user,
            "created_time": created_time,
            "card_acceptor": {
                "mid": "m1",
                "mcc": mcc,
                "name": "Corner Grocer",
                "city": "Austin",
                "country_code": "USA",
            },
            "gpa_order": {"jit_funding": funding},
        }
    )


def program(balance: str = "50.00", users: int = 1) -> dict[str, Any]:
    """Users u1..uN, each with a card c1..cN and `balance` dollars."""
    return {
        "program": {"token": "test", "currency_code": "USD"},
        "cardproducts": [
            {
                "token": "p1",
                "name": "Test cards",
                "config": {"jit_funding": {"programgateway_funding_source": {"enabled": True}}},
            }
        ],
        "users": [
            {"token": f"u{n}", "first_name": "Test", "last_name": str(n)}
            for n in range(1, users + 1)
        ],
        "cards": [
            {"token": f"c{n}", "user_token": f"u{n}", "card_product_token": "p1"}
            for n in range(1, users + 1)
        ],
        "gpaorders": [
            {"token": f"g{n}", "user_token": f"u{n}", "amount": balance, "currency_code": "USD"}
            for n in range(1, users + 1)
        ],
    }


@dataclass
class Gateway:
    url: str
    session: aiohttp.ClientSession
    database_url: str
    stop: asyncio.Event
    task: "asyncio.Task[None]"

    async def jit(self, body: bytes, auth: str | None = AUTH) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"}
        if auth is not None:
            headers["Authorization"] = auth
        async with self.session.post(f"{self.url}/jit", data=body, headers=headers) as response:
            return response.status, await response.read()

    async def admin(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        data = None if payload is None else orjson.dumps(payload)
        async with self.session.request(
            method, self.url + path, data=data, headers={"Authorization": AUTH}
        ) as response:
            return response.status, orjson.loads(await response.read())

    async def journal_count(self, token: str | None = None) -> int:
        connection = await asyncpg.connect(self.database_url)
        try:
            if token is None:
                return int(await connection.fetchval("SELECT count(*) FROM journal"))
            return int(
                await connection.fetchval("SELECT count(*) FROM journal WHERE token = $1", token)
            )
        finally:
            await connection.close()


async def start_gateway(config: Config, session: aiohttp.ClientSession) -> Gateway:
    """Run `serve` in this event loop and wait until /ready says it recovered."""
    from pyjit.server import serve

    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(config, SystemClock(), stop, on_listening=listening.set_result)
    )
    # A server that fails at start (a taken lease, say) must raise here, not time out.
    await asyncio.wait([listening, task], timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    url = listening.result()
    for _ in range(300):
        async with session.get(f"{url}/ready") as response:
            if response.status == 200:
                break
        await asyncio.sleep(0.05)
    assert config.database_url is not None
    return Gateway(url, session, config.database_url, stop, task)


async def stop_gateway(gateway: Gateway) -> None:
    gateway.stop.set()
    await asyncio.wait_for(gateway.task, 30)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture
async def gateway(database_url: str, session: aiohttp.ClientSession) -> AsyncIterator[Gateway]:
    started = await start_gateway(gateway_config(database_url), session)
    try:
        yield started
    finally:
        with contextlib.suppress(Exception):
            await stop_gateway(started)
