"""Proves that a replay whose gateway stops answering ends with one clear error instead of
counting every remaining message of the file as a failure (a QA run against a killed server
counted 23,940 errors before it stopped)."""

import socket

import aiohttp
import pytest

from pyjit.clock import SystemClock
from pyjit.messages import AUTHORIZATION, Message
from pyjit.replay import GIVE_UP_AFTER_FAILURES, GatewayGone, Sender


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_gateway_that_went_away_stops_the_replay() -> None:
    messages = [Message(f"gone-{n}", AUTHORIZATION, "acct", 100, b"{}") for n in range(5000)]
    sent: list[int] = []

    async with aiohttp.ClientSession() as session:
        sender = Sender(
            session,
            f"http://127.0.0.1:{_closed_port()}/jit",
            SystemClock(),
            concurrency=16,
            rate=None,
            clearing_lag=0,
            on_sent=sent.append,
        )
        with pytest.raises(GatewayGone, match="in a row got no answer") as gone:
            await sender.run(messages)

    failures = sum(sender.results.transport_errors.values())
    assert GIVE_UP_AFTER_FAILURES <= failures < GIVE_UP_AFTER_FAILURES + 16
    assert len(sent) < len(messages) // 10
    # What was answered before travels with the error, for the answers file and the report.
    assert gone.value.results is sender.results and sender.results.seconds > 0
