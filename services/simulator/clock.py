"""The simulator's time and token sources, injected so a test run is deterministic."""

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where the simulator reads the time; always timezone-aware UTC."""

    def now(self) -> datetime: ...


class SystemClock:
    """The machine's clock, for demos."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told, for tests."""

    def __init__(self, start: datetime) -> None:
        assert start.tzinfo is not None, "the simulator's clock is UTC-aware"
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def processor_time(moment: datetime) -> str:
    """The processor's time text: ISO 8601 in UTC to the second, with a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TokenSource:
    """Tokens in UUID form drawn from a seed: the same seed gives the same tokens in order.

    They are identifiers, not secrets, so a hash chain is enough; an unseeded source takes
    its seed from `secrets` so two demo runs do not collide.
    """

    def __init__(self, seed: str | None = None) -> None:
        self._seed = seed if seed is not None else secrets.token_hex(16)
        self._counter = 0

    def _next_digest(self) -> bytes:
        self._counter += 1
        return hashlib.sha256(f"{self._seed}:{self._counter}".encode()).digest()

    def token(self) -> str:
        """A fresh 36-character token."""
        hex_digits = self._next_digest().hex()
        parts = (hex_digits[:8], hex_digits[8:12], hex_digits[12:16], hex_digits[16:20])
        return "-".join((*parts, hex_digits[20:32]))

    def digits(self, count: int) -> str:
        """`count` fresh decimal digits (approval codes, card numbers)."""
        value = int.from_bytes(self._next_digest(), "big")
        return str(value % 10**count).zfill(count)
