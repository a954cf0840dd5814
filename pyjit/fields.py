"""Naming the field of a mistyped JIT message.

The engine reports a JSON type mismatch against the whole document (`$`) with serde's
"invalid type" text. On that error path only, the gateway finds the offending field itself,
so the processor and the log get a field path rather than a column number.
"""

from typing import Any

import orjson

STRING = (str,)
AMOUNT = (str, int, float)
OBJECT = (dict,)

FUNDING_FIELDS: dict[str, tuple[type, ...]] = {
    "token": STRING,
    "method": STRING,
    "user_token": STRING,
    "acting_user_token": STRING,
    "business_token": STRING,
    "original_jit_funding_token": STRING,
    "amount": AMOUNT,
}
ACCEPTOR_FIELDS: dict[str, tuple[type, ...]] = {
    "mid": STRING,
    "mcc": STRING,
    "name": STRING,
    "city": STRING,
    "country_code": STRING,
    "country": STRING,
}
TOP_FIELDS: dict[str, tuple[type, ...]] = {
    "card_token": STRING,
    "currency_code": STRING,
    "created_time": STRING,
    "gpa_order": OBJECT,
    "gpa_order_unload": OBJECT,
    "card_acceptor": OBJECT,
}


def mistyped_field(body: bytes) -> str | None:
    """The dotted path of the first field whose JSON type the engine cannot take, if any."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return "$"
    found = _check(document, TOP_FIELDS, "")
    if found:
        return found
    for order in ("gpa_order", "gpa_order_unload"):
        funding = (document.get(order) or {}).get("jit_funding")
        if funding is not None and not isinstance(funding, dict):
            return f"{order}.jit_funding"
        found = _check(funding or {}, FUNDING_FIELDS, f"{order}.jit_funding.")
        if found:
            return found
    return _check(document.get("card_acceptor") or {}, ACCEPTOR_FIELDS, "card_acceptor.")


def _check(values: dict[str, Any], expected: dict[str, tuple[type, ...]], prefix: str) -> str:
    for name, kinds in expected.items():
        value = values.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, kinds):
            return prefix + name
    return ""


def refusal_of(error: ValueError, body: bytes) -> tuple[str, str]:
    """The field a refused message names and the problem with it: the engine writes
    `field: problem`, and a `$` it could not place is named here when it can."""
    engine_field = str(getattr(error, "field", "$"))
    problem = str(error).removeprefix(f"{engine_field}: ")
    field = (mistyped_field(body) if engine_field == "$" else None) or engine_field
    return field, problem
