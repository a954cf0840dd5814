"""An approval that reaches the processor too late, end to end: the simulator's funding
source waits 1 s, and a loopback hop in front of the real gateway delays its answer past
that. The gateway approved and holds the money; the processor declined with
`gateway_log.timed_out`; it proves the webhook makes the consumers undo the hold through
the decider, once, however often the event is replayed."""

import asyncio

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from program_support import Program, gateway_product, person
from wh_support import Served

from services.simulator import state_of_app

Ran = tuple[Served, Program]
DELAY_S = 1.3


async def _slow_hop(gateway_url: str) -> TestServer:
    """Forwards each JIT request to the gateway and holds the answer back for DELAY_S."""

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {"Authorization": request.headers["Authorization"]}
        async with (
            aiohttp.ClientSession() as session,
            session.post(gateway_url + "/jit", data=body, headers=headers) as got,
        ):
            answer, status = await got.read(), got.status
        await asyncio.sleep(DELAY_S)
        return web.Response(body=answer, status=status, content_type="application/json")

    app = web.Application()
    app.router.add_post("/jit", forward)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def _late_card(running: Program, hop: TestServer) -> tuple[str, str]:
    """A person whose card's product funds through the slow hop; (holder, card)."""
    client = running.client
    product = await gateway_product(client, str(hop.make_url("/jit")), 1000, activate=True)
    holder = (await running.call("/people", person("Slow", "123451111"), 201))["token"]
    await running.call(f"/holders/{holder}/kyc")
    await running.call(f"/holders/{holder}/funding", {"token": "f-slow", "amount": "80.00"})
    card = await client.create_card({"user_token": holder, "card_product_token": product})
    return holder, card["token"]


async def test_late_approval_is_undone_by_its_webhook(program: Ran) -> None:
    served, running = program
    hop = await _slow_hop(served.url)
    try:
        holder, card = await _late_card(running, hop)
        mirrored = {"token": card, "user_token": holder, "card_product_token": "slow"}
        await served.load(
            {
                "cardproducts": [{"token": "slow", "name": "Slow cards"}],
                "cards": [mirrored],
            }
        )
        swipe = {"card_token": card, "amount": "25.00", "card_acceptor": {"mid": "m1"}}
        declined = await running.client.simulate_authorization(swipe)
        assert declined["state"] == "DECLINED"
        assert declined["gpa_order"]["funding"]["gateway_log"]["timed_out"] is True

        await asyncio.sleep(DELAY_S)
        await asyncio.wait_for(state_of_app(running.simulator).dispatcher.drain(), 30)
        outcome = "SELECT outcome FROM webhook_events WHERE event_token = $1"
        await served.wait_for(outcome, declined["token"], expect="undone")
        assert await served.account(holder) == (8_000, 0)

        webhook = (await running.client.request("GET", "/webhooks"))["data"][0]["token"]
        await running.client.resend_webhook_event(webhook, "transaction", declined["token"])
        await asyncio.wait_for(state_of_app(running.simulator).dispatcher.drain(), 30)
        assert await served.account(holder) == (8_000, 0)
        undo = await served.fetch("SELECT count(*) FROM journal WHERE token LIKE 'wh-%'")
        assert undo[0][0] == 1
    finally:
        await hop.close()
