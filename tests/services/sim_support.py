"""Loopback support for the services tests.

The simulator on a real port with the client pointed at it, and two small HTTP test doubles
on the far side of the simulator: a JIT gateway and a webhook endpoint.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.marqeta import MarqetaClient, RetryPolicy, codec
from services.marqeta.shapes import UserRequest
from services.simulator import (
    DeliveryPolicy,
    ManualClock,
    SimulatorConfig,
    TokenSource,
    create_app,
    state_of_app,
)
from services.simulator.state import SimulatorState

APPLICATION_TOKEN = "test-application"
ADMIN_ACCESS_TOKEN = "test-admin-access"
GATEWAY_USERNAME = "processor"
GATEWAY_PASSWORD = "Gateway-Password-0123456789!"
WEBHOOK_USERNAME = "marqeta"
WEBHOOK_PASSWORD = "Webhook-Password-0123456789!"
WEBHOOK_SECRET = "whsec-0123456789-abcdefghij"
# A Wednesday, so DAY, WEEK and MONTH windows all start before it.
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass
class Simulator:
    app: web.Application
    server: TestServer
    client: MarqetaClient
    clock: ManualClock

    @property
    def state(self) -> SimulatorState:
        return state_of_app(self.app)


@dataclass
class Recorder:
    """A test double on loopback that records every request and answers from a script."""

    server: TestServer
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    answer: Callable[[bytes], Awaitable[tuple[int, Any]]] | None = None

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))


async def _serve(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def start_simulator() -> AsyncIterator[Callable[..., Awaitable[Simulator]]]:
    started: list[Simulator] = []

    async def start(
        kyc_required: bool = False, seed: str = "tests", backoff_scale: float = 0.001
    ) -> Simulator:
        clock = ManualClock(START)
        config = SimulatorConfig(
            application_token=APPLICATION_TOKEN,
            admin_access_token=ADMIN_ACCESS_TOKEN,
            kyc_required=kyc_required,
            delivery=DeliveryPolicy(backoff_scale=backoff_scale, timeout_s=5.0),
        )
        app = create_app(config, clock=clock, tokens=TokenSource(seed))
        server = await _serve(app)
        client = MarqetaClient(
            str(server.make_url("/v3")),
            APPLICATION_TOKEN,
            ADMIN_ACCESS_TOKEN,
            retry=RetryPolicy(attempts=2, wait_first_s=0.01),
        )
        started.append(Simulator(app, server, client, clock))
        return started[-1]

    yield start
    for simulator in started:
        await simulator.client.close()
        await simulator.server.close()


@pytest.fixture
async def simulator(start_simulator: Callable[..., Awaitable[Simulator]]) -> Simulator:
    return await start_simulator()


@pytest.fixture
async def gateway() -> AsyncIterator[Recorder]:
    """A minimal double of our JIT gateway: approves with 200 unless a test says otherwise."""
    recorder: Recorder

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        recorder.requests.append((dict(request.headers), body))
        status, document = (200, None) if recorder.answer is None else await recorder.answer(body)
        encoded = codec.encode(document or {})
        return web.Response(body=encoded, status=status, content_type="application/json")

    app = web.Application()
    app.router.add_post("/jit", handle)
    recorder = Recorder(await _serve(app))
    yield recorder
    await recorder.server.close()


@pytest.fixture
async def webhook_endpoint() -> AsyncIterator[Recorder]:
    """A webhook receiver that answers each POST with the next scripted status, then 200."""
    recorder: Recorder

    async def handle(request: web.Request) -> web.Response:
        recorder.requests.append((dict(request.headers), await request.read()))
        status = recorder.statuses.pop(0) if recorder.statuses else 200
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/webhooks", handle)
    recorder = Recorder(await _serve(app))
    yield recorder
    await recorder.server.close()


def complete_user(last_name: str = "Lovelace") -> UserRequest:
    """A user with everything the simulator's KYC rule looks at."""
    return {
        "first_name": "Ada",
        "last_name": last_name,
        "email": f"ada.{last_name.lower()}@example.com",
        "address1": "1 Analytical Way",
        "city": "Oakland",
        "state": "CA",
        "postal_code": "94612",
        "country": "US",
        "birth_date": "1990-12-10",
        "identifications": [{"type": "SSN", "value": "123456789"}],
    }


async def jit_program(client: MarqetaClient, gateway_url: str, timeout_millis: int = 2000) -> str:
    """A funding source pointing at the gateway double and a JIT card product; its token."""
    source = await client.create_program_gateway_funding_source(
        {
            "name": "pyjit gateway",
            "url": gateway_url + "jit",
            "basic_auth_username": GATEWAY_USERNAME,
            "basic_auth_password": GATEWAY_PASSWORD,
            "timeout_millis": timeout_millis,
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
                },
                "card_life_cycle": {"activate_upon_issue": True},
            },
        }
    )
    return product["token"]


async def settle(simulator: Simulator) -> None:
    """Let queued webhook deliveries finish (or give up), however long their retries take."""
    await asyncio.wait_for(simulator.state.dispatcher.drain(), timeout=30)


async def subscribe(
    client: MarqetaClient, endpoint: Recorder, events: list[str], algorithm: str = "HMAC_SHA_256"
) -> str:
    """Register the webhook double for `events`; the webhook's token."""
    webhook = await client.create_webhook(
        {
            "name": "pyjit intake",
            "events": events,
            "config": {
                "url": endpoint.url + "webhooks",
                "basic_auth_username": WEBHOOK_USERNAME,
                "basic_auth_password": WEBHOOK_PASSWORD,
                "secret": WEBHOOK_SECRET,
                "signature_algorithm": algorithm,
            },
        }
    )
    return webhook["token"]
