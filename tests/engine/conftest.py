"""Fixtures for the engine binding tests: a funded two-card business program and a JIT
body builder shaped like the processor's messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from pyjit._engine import Engine

NOW_MS = 1_710_331_200_000
"""2024-03-13T12:00:00Z."""

Body = Callable[..., bytes]

HOLDERS = {"card_a": "alice", "card_b": "bob"}
"""The holder the processor names in `jit_funding.user_token` for each fixture card."""


def program_file(funds: str = "100.00", **extra: list[dict[str, Any]]) -> bytes:
    """A business with two users drawing on its account, one card each."""
    file: dict[str, Any] = {
        "businesses": [{"token": "biz"}],
        "users": [
            {"token": "alice", "parent_token": "biz", "uses_parent_account": True},
            {"token": "bob", "parent_token": "biz", "uses_parent_account": True},
        ],
        "cardproducts": [{"token": "prod", "name": "Corporate"}],
        "cards": [
            {"token": "card_a", "user_token": "alice", "card_product_token": "prod"},
            {"token": "card_b", "user_token": "bob", "card_product_token": "prod"},
        ],
        "gpaorders": [{"token": "fund", "business_token": "biz", "amount": funds}],
    }
    file.update(extra)
    return json.dumps(file).encode()


def jit_body(
    token: str,
    method: str = "pgfs.authorization",
    amount: Any = "10.00",
    card: str = "card_a",
    original: str | None = None,
    mcc: Any = "5411",
) -> bytes:
    """A JIT funding message as the processor posts it."""
    funding: dict[str, Any] = {
        "token": token,
        "method": method,
        "user_token": HOLDERS.get(card, "alice"),
        "amount": amount,
    }
    if original is not None:
        funding["original_jit_funding_token"] = original
    transaction = {
        "token": f"tx-{token}",
        "type": "authorization",
        "state": "PENDING",
        "card_token": card,
        "currency_code": "USD",
        "card_acceptor": {"mid": "m1", "mcc": mcc, "name": "Shop", "country_code": "USA"},
        "gpa_order": {"jit_funding": funding},
    }
    return json.dumps(transaction).encode()


@pytest.fixture
def engine() -> Engine:
    """An engine with 100.00 on the shared business account."""
    created = Engine()
    created.load(program_file(), NOW_MS)
    return created


@pytest.fixture
def body() -> Body:
    """The JIT body builder."""
    return jit_body
