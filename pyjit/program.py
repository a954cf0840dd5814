"""`pyjit load`: send a program file to the running gateway, which applies it whole or not
at all and lists the path of every bad field.

The gateway takes at most `PROGRAM_BODY_MAX` bytes per load, because decisions wait while a
file is applied. A larger file is sent in parts, cut in the order the engine applies
collections so that no part names an object only a later part creates; each part is whole or
not at all, and a refused part stops the load with the paths of its problems as they are in
the file.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from rich.console import Console

from pyjit._engine import PROGRAM_COLLECTIONS, PROGRAM_OBJECTS_MAX
from pyjit.decider import PROGRAM_BODY_MAX
from pyjit.gateway_client import GatewayClient, GatewayError

# The order the engine applies collections in, whatever the file's.
COLLECTIONS = tuple(PROGRAM_COLLECTIONS)
# Room for the braces and keys around a part's objects.
PART_MARGIN = 4096
_INDEXED = re.compile(r"^(?P<collection>[a-z]+)\[(?P<index>\d+)\]")


class ProgramFileError(ValueError):
    pass


@dataclass(frozen=True)
class Part:
    """A piece of a program file, and where each of its collections starts in the file."""

    body: bytes
    starts: dict[str, int]

    def in_file(self, path: str) -> str:
        """A problem's path in this part as the same path in the whole file."""
        found = _INDEXED.match(path)
        if found is None or found["collection"] not in self.starts:
            return path
        index = self.starts[found["collection"]] + int(found["index"])
        return f"{found['collection']}[{index}]{path[found.end() :]}"


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


def parts_of(
    body: bytes,
    limit: int = PROGRAM_BODY_MAX - PART_MARGIN,
    objects_max: int = PROGRAM_OBJECTS_MAX,
) -> list[Part]:
    """The file as it is when it fits in one load, else as parts of at most `limit` bytes
    and `objects_max` objects. Raises `ProgramFileError` for an object no part can hold."""
    if len(body) <= limit and _objects(orjson.loads(body)) <= objects_max:
        return [Part(body, {})]
    # A number's own text goes out as a string, which the engine reads exactly as it reads
    # the number: a float would round it, and a Decimal would rewrite "1.5E+1" as "15".
    document: dict[str, Any] = json.loads(body, parse_float=_NumberText)
    # The program's settings, unknown keys and non-arrays go first, where the engine refuses
    # what it must before anything is applied.
    current: dict[str, Any] = {
        key: value
        for key, value in document.items()
        if key not in COLLECTIONS or not isinstance(value, list)
    }
    parts: list[Part] = []
    starts: dict[str, int] = {}
    size = len(_encoded(current))
    for collection in COLLECTIONS:
        items = document.get(collection)
        if not isinstance(items, list):
            continue
        for index, item in enumerate(items):
            encoded = len(_encoded(item)) + 1
            if encoded > limit:
                raise ProgramFileError(
                    f"{collection}[{index}] is {encoded:,} bytes, more than one load takes"
                )
            full = size + encoded > limit or _objects(current) >= objects_max
            if full and any(isinstance(v, list) for v in current.values()):
                parts.append(Part(_encoded(current), starts))
                current, starts, size = {}, {}, 2
            if collection not in current:
                current[collection] = []
                starts[collection] = index
                size += len(collection) + 5
            current[collection].append(item)
            size += encoded
    if current or not parts:
        parts.append(Part(_encoded(current), starts))
    return parts


class _NumberText(str):
    """A JSON number with a fraction or an exponent, as it was written."""


def _objects(document: object) -> int:
    """Objects in a program document's collections, as the engine counts them."""
    if not isinstance(document, dict):
        return 0
    return sum(
        len(value)
        for key, value in document.items()
        if key in COLLECTIONS and isinstance(value, list)
    )


def _encoded(value: object) -> bytes:
    return orjson.dumps(value)


async def load_program(client: GatewayClient, body: bytes, console: Console) -> bool:
    """POST the program, in parts when it is large; print the outcome or every problem;
    True when all of it was applied."""
    try:
        parts = parts_of(body)
    except ProgramFileError as error:
        console.print(f"[red]program not loaded: {error}[/red]")
        return False
    if len(parts) > 1:
        console.print(
            f"program file of {len(body):,} bytes: loading in {len(parts)} parts of at most "
            f"{PROGRAM_BODY_MAX:,} bytes, each whole or not at all"
        )
    for number, part in enumerate(parts, start=1):
        try:
            answer = await client.load_program(part.body)
        except GatewayError as error:
            _print_refusal(error, part, console)
            if number > 1:
                console.print(
                    f"[red]part {number} of {len(parts)} refused; parts before it are loaded[/red]"
                )
            return False
        except (aiohttp.ClientError, TimeoutError) as error:
            console.print(f"[red]gateway unreachable at {client.url}: {error}[/red]")
            return False
        prefix = f"part {number}/{len(parts)}: " if len(parts) > 1 else ""
        console.print(
            f"{prefix}program loaded: {answer['entries']} journal entries, seq {answer['last_seq']}"
        )
    return True


def _print_refusal(error: GatewayError, part: Part, console: Console) -> None:
    payload = error.payload
    if isinstance(payload, dict) and payload.get("problems"):
        console.print(f"[red]program rejected ({len(payload['problems'])} problems):[/red]")
        for problem in payload["problems"]:
            console.print(f"  {part.in_file(problem['path'])}: {problem['message']}")
    else:
        console.print(f"[red]program not loaded: {error}[/red]")
