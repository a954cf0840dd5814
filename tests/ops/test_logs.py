"""Proves the log contract: one JSON line per decision with the request id the caller sent
(or one generated and returned), levels from configuration, card numbers and SSNs masked in
free text, and error tracking that starts only with a DSN and sends no card number."""

import asyncio
import io
import logging
from collections.abc import Iterator

import orjson
import pytest
import sentry_sdk
from aiohttp import web

from pyjit import logs
from tests.gateway.conftest import Gateway, jit_body, program

PAN = "4111111111111111"


@pytest.fixture
def lines() -> Iterator[io.BytesIO]:
    """The JSON lines the process writes while a test runs."""
    stream = io.BytesIO()
    handler = logs.LineHandler(stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        handler.flush()
        root.removeHandler(handler)
        root.setLevel(level)


def parsed(stream: io.BytesIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


async def test_decision_lines_carry_the_request_id(gateway: Gateway, lines: io.BytesIO) -> None:
    status, _ = await gateway.admin("POST", "/admin/program", program("20.00"))
    assert status == 200
    headers = {"Authorization": gateway_auth(), "X-Request-Id": "processor-req-1"}
    async with gateway.session.post(
        f"{gateway.url}/jit", data=jit_body("rid-1"), headers=headers
    ) as response:
        assert response.status == 200
        assert response.headers["X-Request-Id"] == "processor-req-1"
    del headers["X-Request-Id"]
    async with gateway.session.post(
        f"{gateway.url}/jit", data=jit_body("rid-2"), headers=headers
    ) as response:
        generated = response.headers["X-Request-Id"]
    await asyncio.sleep(0)

    decisions = {line["token"]: line for line in parsed(lines) if line["msg"] == "decision"}
    assert decisions["rid-1"]["request_id"] == "processor-req-1"
    assert decisions["rid-2"]["request_id"] == generated != "processor-req-1"
    assert decisions["rid-1"]["shard"] == 0
    assert decisions["rid-1"]["outcome"] == "approved"


def gateway_auth() -> str:
    from tests.gateway.conftest import AUTH

    return AUTH


def test_an_unusable_request_id_is_replaced() -> None:
    assert logs.accept_request_id("abc-123") == "abc-123"
    assert logs.accept_request_id("x" * 500) != "x" * 500
    assert logs.accept_request_id("bad\nid") != "bad\nid"
    assert logs.accept_request_id(None) != logs.accept_request_id(None)


def test_levels_come_from_configuration() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logs.configure("WARNING")
        assert not logs.decisions.isEnabledFor(logging.INFO)
        logs.configure("DEBUG")
        assert logs.decisions.isEnabledFor(logging.DEBUG)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_free_text_is_masked(lines: io.BytesIO) -> None:
    log = logging.getLogger("pyjit.test")
    log.error("body had card %s and ssn 078-05-1120 at seq 123456", PAN)
    try:
        raise ValueError(f"cannot parse 4111-1111-1111-1111 in {PAN[:6]}")
    except ValueError:
        log.exception("failed")
    text = lines.getvalue().decode()
    assert PAN not in text and "4111-1111-1111-1111" not in text and "078-05-1120" not in text
    assert "seq 123456" in text and text.count("[masked]") >= 3


def test_masking_keeps_numbers_that_are_not_card_numbers() -> None:
    assert logs.mask("ts 1700000000001 ok") == "ts 1700000000001 ok"
    assert logs.mask("pan 5500 0000 0000 0004.") == "pan [masked]."
    assert logs.luhn_valid("79927398713") and not logs.luhn_valid("79927398710")


def test_error_tracking_stays_off_without_a_dsn() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logs.configure("INFO", "")
        assert not sentry_sdk.get_client().is_active()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


async def test_error_tracking_sends_errors_without_card_numbers() -> None:
    received: list[bytes] = []

    async def envelope(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/api/{project}/envelope/", envelope)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        logs.init_error_tracking(f"http://publickey@127.0.0.1:{port}/7")
        assert sentry_sdk.get_client().is_active()
        logging.getLogger("pyjit.test").error("declined card %s", PAN)
        await asyncio.to_thread(sentry_sdk.flush, 5)
        for _ in range(50):
            if received:
                break
            await asyncio.sleep(0.05)
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init()
        await runner.cleanup()
    body = b"".join(received)
    assert b"declined card" in body
    assert PAN.encode() not in body
