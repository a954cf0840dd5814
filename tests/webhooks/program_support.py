"""A card program on loopback for the end-to-end and issuance tests: a real `pyjit serve`
(RabbitMQ in its own vhost), the processor simulator wired to it by JIT and by signed
webhooks, and the issuance service over HTTP in front of both."""

import base64
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from wh_support import (
    GATEWAY_PASSWORD,
    GATEWAY_USERNAME,
    WEBHOOK_PASSWORD,
    WEBHOOK_SECRET,
    WEBHOOK_USERNAME,
    Served,
    basic,
)

from services.issuance import Issuance, Vault, create_app
from services.issuance.service import GatewayMirror
from services.marqeta import MarqetaClient, RetryPolicy
from services.simulator import DeliveryPolicy, SimulatorConfig, TokenSource
from services.simulator import create_app as create_simulator

Start = Callable[..., Awaitable[Served]]
APPLICATION, ACCESS = "e2e-application", "e2e-admin-access"
ISSUANCE_AUTH = basic("issuance-caller", "Caller-Password-0123456789!")


def person(last_name: str, ssn: str) -> dict[str, Any]:
    return {
        "first_name": "Grace",
        "last_name": last_name,
        "email": f"{last_name.lower()}@example.com",
        "address1": "1 Harbor Way",
        "city": "Oakland",
        "state": "CA",
        "postal_code": "94612",
        "country": "US",
        "birth_date": "1985-06-01",
        "identifications": [{"type": "SSN", "value": ssn}],
    }


class Program:
    """The simulator, its client, and the issuance service in front of both."""

    def __init__(self, simulator: web.Application, client: MarqetaClient, issuance: str):
        self.simulator = simulator
        self.client = client
        self.issuance = issuance
        self.session = aiohttp.ClientSession(headers={"Authorization": ISSUANCE_AUTH})

    async def call(self, path: str, payload: Any = None, status: int = 200) -> Any:
        async with self.session.post(self.issuance + path, json=payload or {}) as response:
            body = await response.json()
            assert response.status == status, body
            return body


async def gateway_product(
    client: MarqetaClient, jit_url: str, timeout_millis: int, activate: bool
) -> str:
    """A funding source at `jit_url` and a card product funded by it; the product's token."""
    source = await client.create_program_gateway_funding_source(
        {
            "name": "pyjit",
            "url": jit_url,
            "basic_auth_username": GATEWAY_USERNAME,
            "basic_auth_password": GATEWAY_PASSWORD,
            "timeout_millis": timeout_millis,
        }
    )
    funding = {
        "enabled": True,
        "funding_source_token": source["token"],
        "refunds_destination": "GATEWAY",
    }
    product = await client.create_card_product(
        {
            "name": "Employee cards",
            "start_date": "2024-01-01",
            "config": {
                "jit_funding": {"programgateway_funding_source": funding},
                "card_life_cycle": {"activate_upon_issue": activate},
            },
        }
    )
    token: str = product["token"]
    return token


async def _simulator(served: Served) -> tuple[TestServer, MarqetaClient, str]:
    config = SimulatorConfig(
        application_token=APPLICATION,
        admin_access_token=ACCESS,
        kyc_required=True,
        delivery=DeliveryPolicy(backoff_scale=0.001, timeout_s=5.0),
    )
    server = TestServer(create_simulator(config, tokens=TokenSource("e2e")), host="127.0.0.1")
    await server.start_server()
    retry = RetryPolicy(attempts=2, wait_first_s=0.01)
    client = MarqetaClient(str(server.make_url("/v3")), APPLICATION, ACCESS, retry=retry)
    product = await gateway_product(client, served.url + "/jit", 3000, activate=False)
    await client.create_webhook(
        {
            "name": "pyjit",
            "events": ["*"],
            "config": {
                "url": served.url + "/webhooks/marqeta",
                "basic_auth_username": WEBHOOK_USERNAME,
                "basic_auth_password": WEBHOOK_PASSWORD,
                "secret": WEBHOOK_SECRET,
                "signature_algorithm": "HMAC_SHA_256",
            },
        }
    )
    return server, client, product


@pytest.fixture
async def program(
    database_url: str, rabbitmq_url: str, start: Start
) -> AsyncIterator[tuple[Served, Program]]:
    served = await start(database_url, rabbitmq_url=rabbitmq_url)
    simulator, client, product = await _simulator(served)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    async with aiohttp.ClientSession() as session:
        mirror = GatewayMirror(session, served.url, basic(GATEWAY_USERNAME, GATEWAY_PASSWORD))
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        issuance = Issuance(pool, client, mirror, Vault.from_setting(f"k1:{key}"))
        await issuance.prepare(product, "e2e")
        server = TestServer(create_app(issuance, ISSUANCE_AUTH), host="127.0.0.1")
        await server.start_server()
        running = Program(simulator.app, client, str(server.make_url("")).rstrip("/"))
        try:
            yield served, running
        finally:
            await running.session.close()
            await server.close()
            await client.close()
            await simulator.close()
            await pool.close()
