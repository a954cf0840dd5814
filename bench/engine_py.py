"""Times one JIT decision through the Python binding (`Engine.decide` on a ~2 KB body),
against two baselines measured in the same process: `orjson.loads` of the same body and a
pure-Python dict decision (parse with orjson, look the card up, compare the balance).

Run: `.venv/bin/python bench/engine_py.py [decisions]` (default 100000).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

import orjson
from hdrh.histogram import HdrHistogram

from pyjit._engine import PROGRAM_OBJECTS_MAX, Engine

NOW_MS = 1_710_331_200_000
CARDS = 1000


def program() -> bytes:
    users = [
        {"token": f"user-{i}", "parent_token": "biz", "uses_parent_account": True}
        for i in range(CARDS)
    ]
    cards = [
        {"token": f"card-{i}", "user_token": f"user-{i}", "card_product_token": "prod"}
        for i in range(CARDS)
    ]
    controls = [
        {"token": "vc1", "name": "Daily", "amount_limit": "1000000.00", "velocity_window": "DAY"},
        {"token": "vc2", "name": "Count", "usage_limit": 1000000, "velocity_window": "DAY"},
        {"token": "vc3", "name": "Weekly", "amount_limit": "5000000.00", "velocity_window": "WEEK"},
        {
            "token": "vc4",
            "name": "Groceries",
            "amount_limit": "9000000.00",
            "velocity_window": "MONTH",
            "merchant_scope": {"mcc": "5411"},
        },
        {
            "token": "vc5",
            "name": "Per",
            "amount_limit": "5000.00",
            "velocity_window": "TRANSACTION",
        },
    ]
    file = {
        "businesses": [{"token": "biz"}],
        "users": users,
        "cardproducts": [{"token": "prod", "name": "Corporate"}],
        "mccgroups": [{"token": "gambling", "name": "Gambling", "mccs": ["7800-7802", "7995"]}],
        "cards": cards,
        "velocitycontrols": controls,
        "authcontrols": [
            {"token": "ac1", "name": "No gambling", "merchant_scope": {"mcc_group": "gambling"}},
            {"token": "ac2", "name": "Embargo", "merchant_scope": {"country": "PRK"}},
        ],
        "gpaorders": [{"token": "fund", "business_token": "biz", "amount": "900000000.00"}],
    }
    return json.dumps(file).encode()


def jit_body(index: int) -> bytes:
    token = f"jit-{index:09d}"
    card = f"card-{index % CARDS}"
    user = f"user-{index % CARDS}"
    transaction = {
        "type": "authorization",
        "state": "PENDING",
        "token": f"tx-{token}",
        "user_token": user,
        "card_token": card,
        "amount": 12.34,
        "currency_code": "USD",
        "created_time": "2024-03-13T12:00:00Z",
        "network": "VISA",
        "response": {"code": "0000", "memo": "Approved or completed successfully"},
        "acquirer": {"institution_country": "840", "system_trace_audit_number": "654321"},
        "pos": {
            "pan_entry_mode": "CHIP",
            "terminal_id": "TR100000",
            "card_presence": True,
            "partial_approval_capable": False,
        },
        "card_acceptor": {
            "mid": "000000012345",
            "mcc": "5411",
            "name": "Corner Grocery",
            "city": "Oakland",
            "state": "CA",
            "postal_code": "94612",
            "country_code": "USA",
        },
        "gpa": {"currency_code": "USD", "ledger_balance": 100.0, "available_balance": 100.0},
        "transaction_metadata": {"payment_channel": "OTHER", "is_recurring": False},
        "currency_conversion": {
            "network": {"original_amount": 12.34, "original_currency_code": "840"}
        },
        "gpa_order": {
            "token": f"go-{token}",
            "amount": 12.34,
            "state": "PENDING",
            "funding": {"amount": 12.34, "gateway_log": {"order_number": token, "duration": 12}},
            "jit_funding": {
                "token": token,
                "method": "pgfs.authorization",
                "user_token": user,
                "acting_user_token": user,
                "amount": 12.34,
                "tags": "bench",
            },
        },
        "padding": "x" * 900,
    }
    return json.dumps(transaction).encode()


def timed(name: str, bodies: list[bytes], work: Callable[[bytes], object]) -> float:
    histogram = HdrHistogram(1, 60_000_000_000, 3)
    clock = time.perf_counter_ns
    total_ns = 0
    for body in bodies:
        start = clock()
        work(body)
        elapsed = clock() - start
        histogram.record_value(elapsed)
        total_ns += elapsed
    p50, p99, p999 = (histogram.get_value_at_percentile(q) / 1000 for q in (50, 99, 99.9))
    rate = len(bodies) / (total_ns / 1e9)
    print(f"{name:<34} p50={p50:7.2f}us p99={p99:7.2f}us p99.9={p999:7.2f}us {rate:10.0f}/s")
    return p99


def main() -> None:
    decisions = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    engine = Engine()
    engine.load(program(), NOW_MS)
    bodies = [jit_body(index) for index in range(decisions)]
    print(f"engine_py bench: {decisions} decisions, body {len(bodies[0])} bytes")

    balances = {f"card-{i}": 900_000_000_00 for i in range(CARDS)}

    def python_decision(body: bytes) -> bool:
        message = orjson.loads(body)
        funding = message["gpa_order"]["jit_funding"]
        cents = round(funding["amount"] * 100)
        if balances[message["card_token"]] < cents:
            return False
        balances[message["card_token"]] -= cents
        return True

    baseline = timed("baseline orjson.loads", bodies, orjson.loads)
    python = timed("baseline python dict decision", bodies, python_decision)
    ours = timed("Engine.decide (parse+decide+entry)", bodies, lambda b: engine.decide(b, NOW_MS))
    print(f"p99 ratio engine/orjson.loads = {ours / baseline:.2f}x")
    print(f"p99 ratio engine/python dict decision = {ours / python:.2f}x")
    snapshot_pause(engine)
    program_edit_pause(engine)


def program_edit_pause(engine: Engine, holders: int = 50_000, edits: int = 200) -> None:
    """How long one small program edit (a portal changing one limit) holds the engine once the
    program has `holders` users with a card each, against copying the state, which is the
    least an all-or-nothing load by copy would pay."""
    step = PROGRAM_OBJECTS_MAX // 2
    for first in range(0, holders, step):
        numbers = range(first, min(first + step, holders))
        users = [{"token": f"edit-user-{i}"} for i in numbers]
        cards = [{"token": f"edit-card-{i}", "user_token": f"edit-user-{i}"} for i in numbers]
        engine.load(json.dumps({"users": users, "cards": cards}).encode(), NOW_MS)
    files = [
        json.dumps(
            {
                "velocitycontrols": [
                    {
                        "token": "edit-limit",
                        "name": "Daily",
                        "amount_limit": f"{1000 + index}.00",
                        "velocity_window": "DAY",
                        "association": {"user_token": f"edit-user-{index}"},
                    }
                ]
            }
        ).encode()
        for index in range(edits)
    ]
    edit = timed(f"one-control edit at {holders} holders", files, lambda f: engine.load(f, NOW_MS))
    copy = timed("baseline copy of the state", files[:20], lambda _: engine.frozen())
    print(f"p99 ratio edit/state copy = {edit / copy:.4f}x")


def snapshot_pause(engine: Engine, rounds: int = 5) -> None:
    """How long admission pauses for a snapshot of the state the decisions left: the copy
    (`Engine.frozen`, what the gateway pauses for) against writing it out in full (what it
    paused for before)."""
    size = len(engine.snapshot())
    copy_p50 = timed_once(rounds, engine.frozen)
    write_p50 = timed_once(rounds, engine.snapshot)
    print(
        f"snapshot of {engine.last_seq} entries ({size / 1e6:.1f} MB): frozen copy "
        f"p50={copy_p50:.1f}ms, full snapshot p50={write_p50:.1f}ms, "
        f"pause ratio {copy_p50 / write_p50:.3f}"
    )


def timed_once(rounds: int, work: Callable[[], object]) -> float:
    elapsed = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        work()
        elapsed.append((time.perf_counter_ns() - start) / 1e6)
    return sorted(elapsed)[rounds // 2]


if __name__ == "__main__":
    main()
