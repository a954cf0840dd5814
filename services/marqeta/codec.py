"""JSON as the processor writes it, with every amount kept exact.

The processor sends amounts as JSON numbers ("amount": 12.10). Decoding reads every
non-integer number as a `Decimal`, and whole numbers found under an amount field as well, so
an amount never passes through a float. Encoding writes a `Decimal` back as the same number
text. Both the client and the simulator use this module, so they agree byte for byte.
"""

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson

AMOUNT_FIELDS = frozenset(
    {
        "amount",
        "amount_limit",
        "available_balance",
        "cash_back_amount",
        "credit_balance",
        "impacted_amount",
        "ledger_balance",
        "original_amount",
        "pending_credits",
        "request_amount",
    }
)


class CodecError(ValueError):
    """The bytes are not a JSON document of the expected shape."""


def _encode_default(value: object) -> orjson.Fragment:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"amount {value} is not a finite number")
        return orjson.Fragment(format(value, "f").encode())
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode(document: Any) -> bytes:
    """Serialize `document`, writing each `Decimal` as an exact JSON number."""
    return orjson.dumps(document, default=_encode_default)


def _exact_amounts(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: _exact_amounts(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_exact_amounts(item, key) for item in value]
    if key in AMOUNT_FIELDS and isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


def decode(body: bytes) -> Any:
    """Parse `body`; fractional numbers and whole amounts become `Decimal`."""
    try:
        return _exact_amounts(json.loads(body, parse_float=Decimal))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CodecError(f"body is not JSON: {error}") from error


def decode_object(body: bytes) -> dict[str, Any]:
    """Parse `body` and insist that it is a JSON object."""
    document = decode(body) if body else {}
    if not isinstance(document, Mapping):
        raise CodecError("body is not a JSON object")
    return dict(document)
