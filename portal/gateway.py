"""How the portal changes what the gateway decides: it loads program documents
(docs/program-file.md) through the decider, as `POST /admin/program` does, in the same
process under `pyjit serve` or over HTTP under `pyjit serve --role portal`."""

from typing import Any, Protocol

import aiohttp
import orjson

from pyjit._engine import ProgramError
from pyjit.decider import NotDurable
from pyjit.edge import PROGRAM_COMMIT_TIMEOUT_S, ServerState
from pyjit.gateway_client import GatewayClient, GatewayError


class ProgramRejected(ValueError):
    """The engine refused the document; `problems` are (path, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))
        self.problems = problems


class GatewayUnavailable(RuntimeError):
    """The gateway cannot apply documents now (recovering, unreachable, not durable)."""


class ProgramLoader(Protocol):
    async def load(self, document: dict[str, Any]) -> None:
        """Apply the document whole, durably, or raise."""
        ...


class InProcessLoader:
    """Loads through the decider of this process, once recovery has produced it."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def load(self, document: dict[str, Any]) -> None:
        decider = self.state.decider
        if decider is None:
            raise GatewayUnavailable("the gateway is still recovering")
        try:
            await decider.load_program(orjson.dumps(document), PROGRAM_COMMIT_TIMEOUT_S)
        except ProgramError as error:
            raise ProgramRejected(list(error.problems)) from error
        except NotDurable as error:
            raise GatewayUnavailable(str(error)) from error


class HttpLoader:
    """Loads through a gateway elsewhere, with its admin credentials."""

    def __init__(self, url: str, credentials: tuple[str, str], admin: tuple[str, str]) -> None:
        self.url = url
        self.credentials = credentials
        self.admin = admin

    async def load(self, document: dict[str, Any]) -> None:
        try:
            async with GatewayClient(self.url, self.credentials, self.admin, 2) as client:
                await client.load_program(orjson.dumps(document))
        except GatewayError as error:
            payload = error.payload
            if error.status == 400 and isinstance(payload, dict) and "problems" in payload:
                problems = [(p["path"], p["message"]) for p in payload["problems"]]
                raise ProgramRejected(problems) from error
            raise GatewayUnavailable(str(error)) from error
        except (aiohttp.ClientError, TimeoutError) as error:
            raise GatewayUnavailable(f"gateway unreachable at {self.url}: {error!r}") from error
