"""Structured logging: one JSON object per line on stderr.

Decision lines carry the token, method, outcome, reason and latency and nothing else from the
message: never a card number, a CVV or an identity document.
"""

import logging
import sys
from typing import Any

import orjson


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
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
        return orjson.dumps(line).decode()


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
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
        decisions.info(
            "decision",
            extra={
                "fields": {
                    "token": token,
                    "method": method,
                    "outcome": outcome,
                    "reason": reason,
                    "status": status,
                    "latency_us": latency_us,
                }
            },
        )


def log_rejected(token: str | None, field: str, error: str, status: int) -> None:
    decisions.warning(
        "rejected",
        extra={"fields": {"token": token, "field": field, "error": error, "status": status}},
    )
