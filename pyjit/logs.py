"""Structured logging: one JSON object per line on stderr.

Decision lines carry the token, method, outcome, reason, latency and shard and nothing else
from the message: never a card number, a CVV or an identity document. Free text (messages and
tracebacks) has digit runs shaped like a card number or an SSN masked before it is written,
in case an exception quotes a body.

Every line written while a request is handled carries its request id (`request_id`, set by
the edge from X-Request-Id or generated); gRPC and queue consumers set the same context
variable from their metadata or message headers.
"""

import asyncio
import contextvars
import itertools
import logging
import re
import secrets
import sys
from collections.abc import Awaitable, Callable
from typing import Any, BinaryIO

import orjson
from aiohttp import web

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_MAX = 128

# A random process prefix and a counter: unique across processes, and cheaper per request
# than drawing fresh randomness on the JIT path.
_id_prefix = secrets.token_hex(4)
_id_counter = itertools.count(1)

# 13-19 digits, optionally grouped by spaces or dashes (card numbers), and 3-2-4 (SSNs).
_CARD_NUMBER = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_SSN = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")


def new_request_id() -> str:
    return f"{_id_prefix}-{next(_id_counter):x}"


def accept_request_id(presented: str | None) -> str:
    """The caller's request id when it is short printable text, else a fresh one."""
    if presented and len(presented) <= REQUEST_ID_MAX and presented.isprintable():
        return presented
    return new_request_id()


def mask(text: str) -> str:
    """`text` with card numbers (digit runs passing the Luhn check) and SSNs replaced."""
    return _SSN.sub("[masked]", _CARD_NUMBER.sub(_mask_card_number, text))


def _mask_card_number(match: re.Match[str]) -> str:
    run = match.group()
    return "[masked]" if luhn_valid(run) else run


def luhn_valid(text: str) -> bool:
    """Whether the digits of `text` pass the Luhn check that every card number passes."""
    digits = [int(c) for c in text if c.isdigit()]
    total = 0
    for position, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if position % 2 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0


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
        current = request_id.get()
        if current is not None:
            line["request_id"] = current
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        else:
            line["msg"] = mask(line["msg"])
        if record.exc_info:
            line["exception"] = mask(self.formatException(record.exc_info))
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


def configure(level: str = "INFO", sentry_dsn: str = "") -> None:
    """JSON lines on stderr at `level`; error tracking only when a Sentry DSN is given."""
    handler = LineHandler(sys.stderr.buffer)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log would repeat every request; the decision line already says it.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if sentry_dsn:
        init_error_tracking(sentry_dsn)


def init_error_tracking(dsn: str) -> None:
    """Send errors (exceptions and ERROR lines) to Sentry, without request bodies; PII stays
    off, as it is by default."""
    import sentry_sdk

    sentry_sdk.init(
        dsn=dsn,
        max_request_body_size="never",
        traces_sample_rate=0.0,
        before_send=_scrub_event,
    )


def _scrub_event(event: Any, hint: Any) -> Any:
    """The event with card numbers and SSNs masked in every string it carries: messages,
    their arguments, exception values, breadcrumbs and local variables alike."""
    return _masked(event)


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    return value


decisions = logging.getLogger("pyjit.decisions")


def log_decision(
    token: str,
    method: str,
    outcome: str,
    reason: str | None,
    latency_us: int,
    status: int,
    shard: int = 0,
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
            "shard": shard,
        }
        extra = {"fields": fields}
        record = decisions.makeRecord(
            decisions.name, logging.INFO, __file__, 0, "decision", (), None, extra=extra
        )
        decisions.handle(record)


def log_rejected(token: str | None, field: str, error: str, status: int) -> None:
    # A refused body is untrusted: its token and the error quoting it may hold anything.
    fields = {
        "token": mask(token) if token is not None else None,
        "field": field,
        "error": mask(error),
        "status": status,
    }
    decisions.warning("rejected", extra={"fields": fields})


@web.middleware
async def request_ids(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Carry the caller's X-Request-Id (or a fresh one) into every line logged while the
    request is handled, and back in the response."""
    current = accept_request_id(request.headers.get(REQUEST_ID_HEADER))
    request_id.set(current)
    response = await handler(request)
    response.headers[REQUEST_ID_HEADER] = current
    return response
