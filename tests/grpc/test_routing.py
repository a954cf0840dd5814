"""Shard selection, the shard list, program splitting and the stand-in policy, without
servers; and the generated stubs match proto/ (a stale or hand-edited stub fails here)."""

from collections import Counter
from decimal import Decimal

import orjson
import pytest

from pyjit.routing import NoHolder, ShardListError, holder_of, owner, parse_shards, split_program
from pyjit.rpc import codegen, money
from pyjit.standin import StandInPolicy, parse_exact
from tests.grpc.cluster import jit_body, program


def test_owner_is_stable_spread_and_moves_little_when_a_shard_is_added() -> None:
    holders = [f"holder-{n}" for n in range(3000)]
    three = [owner(holder, 3) for holder in holders]
    assert three == [owner(holder, 3) for holder in holders]
    assert all(800 < count < 1200 for count in Counter(three).values())
    four = [owner(holder, 4) for holder in holders]
    moved = [(a, b) for a, b in zip(three, four, strict=True) if a != b]
    # Only holders the new shard wins move, about a quarter of them.
    assert all(b == 3 for _, b in moved) and 600 < len(moved) < 900


def test_shard_list() -> None:
    shards = parse_shards("127.0.0.1:1|127.0.0.1:2,decider-1.svc:50051")
    assert [shard.target for shard in shards] == [
        "ipv4:127.0.0.1:1,127.0.0.1:2",
        "decider-1.svc:50051",
    ]
    for bad in ("", "a:1,", "nohost", "decider-1.svc:1|decider-2.svc:1"):
        with pytest.raises(ShardListError):
            parse_shards(bad)


def test_holder_is_the_funding_holder_business_first() -> None:
    document = orjson.loads(jit_body("t1", user="u7"))
    assert holder_of(document) == "u7"
    document["gpa_order"]["jit_funding"]["business_token"] = "b1"
    assert holder_of(document) == "b1"
    del document["gpa_order"]["jit_funding"]["user_token"]
    del document["gpa_order"]["jit_funding"]["business_token"]
    with pytest.raises(NoHolder) as caught:
        holder_of(document)
    assert caught.value.field == "gpa_order.jit_funding.user_token"


def test_split_program_sends_each_gpa_order_to_its_owner_only() -> None:
    parts = [orjson.loads(part) for part in split_program(orjson.dumps(program(users=9)), 2)]
    for index, part in enumerate(parts):
        assert len(part["cards"]) == 9
        orders = part.get("gpaorders", [])
        assert all(owner(order["user_token"], 2) == index for order in orders)
    assert sum(len(part.get("gpaorders", [])) for part in parts) == 9


def test_standin_policy() -> None:
    policy = StandInPolicy.parse("25.00", "USD", "5411,5811-5814")
    assert policy.mcc_ranges == ((5411, 5411), (5811, 5814))

    def answer(body: bytes) -> tuple[bool, dict[str, object]]:
        approved, reply = policy.answer(parse_exact(body))
        return approved, orjson.loads(reply)["jit_funding"]

    assert answer(jit_body("a", "25.00", mcc="5812"))[0]
    declined = answer(jit_body("b", "25.01", mcc="5812"))
    assert not declined[0] and declined[1]["decline_reason"] == "TRANSACTION_NOT_PERMITTED"
    assert not answer(jit_body("c", "1.00", mcc="7995"))[0]
    assert not answer(jit_body("d", "1.00", method="pgfs.authorization.incremental"))[0]
    assert answer(jit_body("e", "99.00", method="pgfs.authorization.capture"))[0]
    # A JSON number keeps its exact value: 24.999 is not rounded into the limit.
    exact = parse_exact(jit_body("f", 24.999, mcc="5411"))
    assert exact["gpa_order"]["jit_funding"]["amount"] == Decimal("24.999")
    assert not policy.answer(exact)[0]
    assert not StandInPolicy().answer(parse_exact(jit_body("g", "0.01")))[0]
    with pytest.raises(ValueError):
        StandInPolicy.parse("1.00", "USD", "54x1")


def test_money_text_round_trips_exactly() -> None:
    assert money.to_text(1234, "USD") == "12.34"
    assert money.to_text(-5, "USD") == "-0.05"
    assert money.to_text(5, "JPY") == "5"
    assert money.to_text(1, "KWD") == "0.001"
    assert money.to_minor("12.34", "USD") == 1234
    with pytest.raises(money.AmountError):
        money.to_minor("12.345", "USD")


def test_generated_stubs_match_the_protos() -> None:
    assert codegen.check() == []
