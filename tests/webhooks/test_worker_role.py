"""`pyjit serve --role worker` runs the webhook consumers alone: it proves the role is
offered by the command line, starts against the database without an HTTP listener of its
own, announces the edge it sends decisions to, and stops cleanly when asked."""

import asyncio
from dataclasses import replace

from wh_support import webhook_config

from pyjit.cli import SERVE_ROLES
from pyjit.clock import SystemClock
from pyjit.config import Address
from pyjit.server import serve


def test_worker_is_a_serve_role() -> None:
    assert "worker" in SERVE_ROLES


async def test_worker_starts_announces_its_edge_and_stops(database_url: str) -> None:
    from pyjit.server import run_migrations

    await run_migrations(database_url)
    config = replace(webhook_config(database_url), http_addr=Address("127.0.0.1", 18_123))
    announced: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(config, SystemClock(), stop, on_listening=announced.set_result, role="worker")
    )
    assert await asyncio.wait_for(announced, 30) == "worker:http://127.0.0.1:18123"
    stop.set()
    await asyncio.wait_for(task, 30)
