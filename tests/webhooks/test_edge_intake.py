"""`pyjit serve --role edge` takes the processor's webhooks too: it proves the edge's
application serves `POST /webhooks/marqeta` with the same checks (a wrong signature is a
401) and queues an accepted delivery's events for `--role worker` to consume."""

import orjson
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from wh_support import WEBHOOK_AUTH, sign, transaction, webhook_config

from pyjit.clock import SystemClock
from pyjit.database import create_pool
from pyjit.routing import Router, parse_shards
from pyjit.rpc.forwarding import EdgeState, build_edge_app
from pyjit.server import run_migrations
from pyjit.standin import StandInPolicy


async def test_edge_queues_signed_deliveries(database_url: str) -> None:
    await run_migrations(database_url)
    pool = await create_pool(database_url)
    config = webhook_config(database_url)
    router = Router(parse_shards("127.0.0.1:1"))
    state = EdgeState(config, SystemClock(), pool, router, StandInPolicy())
    server = TestServer(build_edge_app(state), host="127.0.0.1")
    await server.start_server()
    try:
        body = orjson.dumps({"transactions": [transaction("t1", "j1")]})
        url = str(server.make_url("/webhooks/marqeta"))
        async with ClientSession(headers={"Authorization": WEBHOOK_AUTH}) as session:
            headers = {"X-Marqeta-Signature": sign(body)}
            async with session.post(url, data=body, headers=headers) as response:
                assert response.status == 200
            bad = {"X-Marqeta-Signature": sign(body + b" ")}
            async with session.post(url, data=body, headers=bad) as response:
                assert response.status == 401
        queued = await pool.fetch("SELECT event_token, event_type FROM webhook_queue")
        assert [tuple(row) for row in queued] == [("t1", "transaction.authorization")]
    finally:
        await server.close()
        await router.close()
        await pool.close()
