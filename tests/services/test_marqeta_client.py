"""The processor client's transport rules, against tiny aiohttp apps standing in for the network.

Proves: a 503 is retried and the retry's answer is returned; a 400 is never retried and
surfaces as `InvalidRequestError` with the processor's `error_code` and `error_message`;
a refused connection is retried and then raised as `ProcessorUnavailableError`; every
request carries HTTP Basic auth; a create without a token gets one, reused on retry; and
amounts cross the wire as exact decimals.
"""

import base64
import socket
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.marqeta import (
    InvalidRequestError,
    MarqetaClient,
    NotFoundError,
    ProcessorServerError,
    ProcessorUnavailableError,
    RetryPolicy,
)

FAST = RetryPolicy(attempts=3, wait_first_s=0.001, wait_max_s=0.01)


class Script:
    """Answers each request with the next scripted (status, body); records what came in."""

    def __init__(self, *answers: tuple[int, bytes]) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, dict(request.headers), await request.read()))
        status, body = self.answers.pop(0) if self.answers else (200, b"{}")
        return web.Response(status=status, body=body, content_type="application/json")


@pytest.fixture
async def served() -> AsyncIterator[tuple[Script, MarqetaClient]]:
    script = Script()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", script.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    client = MarqetaClient(str(server.make_url("/v3")), "app-token", "admin-token", retry=FAST)
    yield script, client
    await client.close()
    await server.close()


async def test_a_503_is_retried_then_the_answer_returned(
    served: tuple[Script, MarqetaClient],
) -> None:
    script, client = served
    script.answers = [
        (503, b'{"error_code": "503000", "error_message": "try later"}'),
        (200, b'{"token": "u1", "status": "ACTIVE"}'),
    ]

    user = await client.get_user("u1")

    assert user == {"token": "u1", "status": "ACTIVE"}
    assert len(script.requests) == 2


async def test_a_400_is_never_retried_and_carries_the_processors_code(
    served: tuple[Script, MarqetaClient],
) -> None:
    script, client = served
    script.answers = [(400, b'{"error_code": "400057", "error_message": "bad email"}')]

    with pytest.raises(InvalidRequestError) as raised:
        await client.create_user({"email": "nope"})

    assert (raised.value.status, raised.value.error_code) == (400, "400057")
    assert raised.value.error_message == "bad email"
    assert len(script.requests) == 1


async def test_a_404_is_typed_and_not_retried(served: tuple[Script, MarqetaClient]) -> None:
    script, client = served
    script.answers = [(404, b'{"error_code": "404100", "error_message": "no such card"}')]

    with pytest.raises(NotFoundError):
        await client.get_card("missing")

    assert len(script.requests) == 1


async def test_5xx_retries_stop_after_the_policys_attempts(
    served: tuple[Script, MarqetaClient],
) -> None:
    script, client = served
    script.answers = [(500, b"not json")] * 5

    with pytest.raises(ProcessorServerError) as raised:
        await client.get_user("u1")

    assert raised.value.status == 500 and raised.value.error_code is None
    assert len(script.requests) == FAST.attempts


async def test_every_request_carries_basic_auth_and_creates_carry_a_token(
    served: tuple[Script, MarqetaClient],
) -> None:
    script, client = served
    script.answers = [(503, b"{}"), (201, b'{"token": "x", "state": "COMPLETION"}')]

    await client.create_gpa_order(
        {
            "user_token": "u1",
            "amount": Decimal("10.10"),
            "currency_code": "USD",
            "funding_source_token": "fs",
        }
    )

    expected = "Basic " + base64.b64encode(b"app-token:admin-token").decode()
    assert all(headers["Authorization"] == expected for _, headers, _ in script.requests)
    first, second = (body for _, _, body in script.requests)
    assert first == second, "a retried create must send the same token"
    assert b'"amount":10.10' in first


async def test_a_refused_connection_is_retried_then_raised_as_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = MarqetaClient(f"http://127.0.0.1:{port}/v3", "a", "b", retry=FAST)

    with pytest.raises(ProcessorUnavailableError):
        await client.get_user("u1")

    await client.close()
