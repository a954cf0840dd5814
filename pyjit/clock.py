"""The one clock and the one id source of the process.

Everything that needs the time or a fresh identifier receives one of these objects, so tests
can drive time and the engine's determinism is never undermined by a stray clock read.
"""

import secrets
import time
from typing import Protocol


class Clock(Protocol):
    """Wall time for the engine and the journal, monotonic time for budgets and latency."""

    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch, UTC."""
        ...

    def monotonic_ns(self) -> int:
        """A clock that never goes back, for measuring durations."""
        ...


class SystemClock:
    """The machine's clocks."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()


class Ids(Protocol):
    """Fresh unguessable identifiers and secrets."""

    def token(self, length: int) -> str:
        """A URL-safe random string of exactly `length` characters."""
        ...


class SystemIds:
    """Identifiers from the operating system's random source."""

    def token(self, length: int) -> str:
        return secrets.token_urlsafe(length)[:length]
