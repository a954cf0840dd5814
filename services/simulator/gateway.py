"""Sending JIT funding messages to the program gateway, as the processor does.

The body is the whole transaction with the request at `gpa_order.jit_funding`. HTTP 200
approves and 402 declines; a late answer, no answer, or any other status declines too,
and the `gateway_log` records which it was (`timed_out` only for a late or missing answer,
since that is what the field names).
"""

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp

from services.marqeta import codec
from services.marqeta.auth import basic_authorization
from services.simulator.state import Resource, SimulatorState


@dataclass(frozen=True, slots=True)
class GatewayAnswer:
    """What the program gateway said about one JIT message."""

    status: int | None
    body: Any
    timed_out: bool
    duration_ms: int

    @property
    def approved(self) -> bool:
        return self.status == 200

    @property
    def decline_reason(self) -> str | None:
        """The gateway's reason on a 402, as it wrote it."""
        if self.status != 402 or not isinstance(self.body, dict):
            return None
        jit = self.body.get("jit_funding")
        reason = jit.get("decline_reason") if isinstance(jit, dict) else None
        return reason if isinstance(reason, str) else None

    def log(self, order_number: str) -> dict[str, Any]:
        """The `gpa_order.funding.gateway_log` of the transaction."""
        if self.timed_out:
            message = "Timed out waiting for the gateway"
        elif self.status is None:
            message = "Could not reach the gateway"
        elif self.status in (200, 402):
            message = "Approved" if self.approved else "Declined by the gateway"
        else:
            message = f"Gateway application error: HTTP {self.status}"
        log: dict[str, Any] = {
            "order_number": order_number,
            "transaction_id": order_number,
            "message": message,
            "duration": self.duration_ms,
            "timed_out": self.timed_out,
        }
        if self.status is not None:
            log["response"] = {"code": str(self.status), "data": self.body}
        return log


def _headers(state: SimulatorState, source: Resource) -> dict[str, str]:
    password = state.gateway_passwords[source["token"]]
    return {
        **source.get("custom_header", {}),
        "Content-Type": "application/json",
        "Authorization": basic_authorization(source["basic_auth_username"], password),
    }


async def send_jit(state: SimulatorState, source: Resource, transaction: Resource) -> GatewayAnswer:
    """POST one JIT message and wait at most the funding source's `timeout_millis`."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    status: int | None = None
    body: Any = None
    timed_out = False
    try:
        async with asyncio.timeout(source["timeout_millis"] / 1000):
            async with state.http().post(
                source["url"], data=codec.encode(transaction), headers=_headers(state, source)
            ) as response:
                raw = await response.read()
                status = response.status
        body = codec.decode(raw) if raw else None
    except TimeoutError:
        timed_out, status = True, None
    except aiohttp.ClientError:
        status = None
    except codec.CodecError:
        body = None
    duration_ms = round((loop.time() - started) * 1000)
    return GatewayAnswer(status, body, timed_out, duration_ms)
