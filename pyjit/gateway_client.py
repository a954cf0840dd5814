"""A client of the running gateway for the CLI: admin calls and the JIT session."""

from types import TracebackType
from typing import Any

import aiohttp
import orjson

from pyjit.edge import basic_header

REQUEST_TIMEOUT_S = 10.0
ADMIN_TIMEOUT_S = 120.0


class GatewayError(RuntimeError):
    """The gateway answered something other than success."""

    def __init__(self, status: int, payload: Any) -> None:
        super().__init__(f"HTTP {status}: {payload}")
        self.status = status
        self.payload = payload


class GatewayClient:
    """One keep-alive session to the gateway, authenticated with Basic credentials."""

    def __init__(
        self,
        url: str,
        credentials: tuple[str, str],
        admin_credentials: tuple[str, str] | None = None,
        connections: int = 64,
    ) -> None:
        self.url = url.rstrip("/")
        self._headers = {
            "Authorization": basic_header(*credentials).decode(),
            "Content-Type": "application/json",
        }
        self._admin_headers = {
            "Authorization": basic_header(*(admin_credentials or credentials)).decode()
        }
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "GatewayClient":
        self._session = aiohttp.ClientSession(
            headers=self._headers,
            connector=aiohttp.TCPConnector(limit=self._connections, keepalive_timeout=60),
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
        )
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use the client in `async with`"
        return self._session

    @property
    def jit_url(self) -> str:
        return f"{self.url}/jit"

    async def load_program(self, body: bytes) -> dict[str, Any]:
        return await self._call("POST", "/admin/program", body)

    async def reconciliation(self, prefix: str) -> dict[str, Any]:
        return await self._call("GET", f"/admin/reconciliation?prefix={prefix}", None)

    async def ready(self) -> dict[str, Any]:
        return await self._call("GET", "/ready", None)

    async def _call(self, method: str, path: str, body: bytes | None) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=ADMIN_TIMEOUT_S)
        async with self.session.request(
            method, self.url + path, data=body, timeout=timeout, headers=self._admin_headers
        ) as response:
            raw = await response.read()
            try:
                payload = orjson.loads(raw)
            except orjson.JSONDecodeError:
                payload = raw.decode("utf-8", "replace")
            if response.status != 200 or not isinstance(payload, dict):
                raise GatewayError(response.status, payload)
            return payload
