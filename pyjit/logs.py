"""Structured logging: one JSON object per line on stderr.

Decision lines carry the token, method, outcome, reason and latency and nothing else from the
message: never a card number, a CVV or an identity document.
"""

import asyncio
import logging
import sys
from typing import Any, BinaryIO

import orjson


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return self.line(record).decode()

    def line(self, record: logging.LogRecord) -> bytes:
        """The record as one JSON object, as bytes."""
        line: dict[str, Any] = {
            "ts_ms": int(record.created * 1000),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line)


class LineHandler(logging.Handler):
    """Writes formatted lines to a binary stream, flushed once per event loop iteration.

    Under load many decisions finish in one loop iteration; one write for all of them costs
    a fraction of a write and a flush per line. Outside an event loop each line is flushed
    at once."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream = stream
        self._formatter = JsonFormatter()
        self._lines: list[bytes] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self._formatter.line(record) + b"\n"
        except Exception:
            self.handleError(record)
            return
        if not self._lines:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:
                self._lines.append(line)
                self.flush()
                return
        self._lines.append(line)

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        if lines:
            self._stream.write(b"".join(lines))
            self._stream.flush()


def configure(level: str = "INFO") -> None:
    handler = LineHandler(sys.stderr.buffer)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log would repeat every request; the decision line already says it.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


decisions = logging.getLogger("pyjit.decisions")


def log_decision(
    token: str,
    method: str,
    outcome: str,
    reason: str | None,
    latency_us: int,
    status: int,
) -> None:
    if decisions.isEnabledFor(logging.INFO):
        # Built directly: `Logger.info` would walk the stack to find the caller, which
        # costs more than the rest of the line, and the caller is always this function.
        fields = {
            "token": token,
            "method": method,
            "outcome": outcome,
            "reason": reason,
            "status": status,
            "latency_us": latency_us,
        }
        extra = {"fields": fields}
        record = decisions.makeRecord(
            decisions.name, logging.INFO, __file__, 0, "decision", (), None, extra=extra
        )
        decisions.handle(record)


def log_rejected(token: str | None, field: str, error: str, status: int) -> None:
    decisions.warning(
        "rejected",
        extra={"fields": {"token": token, "field": field, "error": error, "status": status}},
    )
