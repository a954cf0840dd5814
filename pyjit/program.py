"""`pyjit load`: send a program file to the running gateway, which applies it whole or not
at all and lists the path of every bad field."""

from pathlib import Path

import aiohttp
import orjson
from rich.console import Console

from pyjit.gateway_client import GatewayClient, GatewayError


class ProgramFileError(ValueError):
    pass


def read_program_file(path: Path) -> bytes:
    """The file's bytes, once they are known to hold one JSON object."""
    try:
        body = path.read_bytes()
    except OSError as error:
        raise ProgramFileError(f"cannot read {path}: {error.strerror}") from error
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ProgramFileError(f"{path} is not JSON: {error}") from error
    if not isinstance(parsed, dict):
        raise ProgramFileError(f"{path} must hold one JSON object keyed by collection")
    return body


async def load_program(client: GatewayClient, body: bytes, console: Console) -> bool:
    """POST the program; print the outcome or every problem; True when it was applied."""
    try:
        answer = await client.load_program(body)
    except GatewayError as error:
        payload = error.payload
        if isinstance(payload, dict) and payload.get("problems"):
            console.print(f"[red]program rejected ({len(payload['problems'])} problems):[/red]")
            for problem in payload["problems"]:
                console.print(f"  {problem['path']}: {problem['message']}")
        else:
            console.print(f"[red]program not loaded: {error}[/red]")
        return False
    except (aiohttp.ClientError, TimeoutError) as error:
        console.print(f"[red]gateway unreachable at {client.url}: {error!r}[/red]")
        return False
    console.print(f"program loaded: {answer['entries']} journal entries, seq {answer['last_seq']}")
    return True
