"""Proves the binding keeps the contract of `pyjit/_engine.pyi` with the issue's key cases:
exact amounts, shared-account races, count limits, idempotent reversals, clearings,
incremental holds, MCC blocks, refused amounts and the error classes."""

from __future__ import annotations

import json

import pytest

import pyjit._engine as engine_module
from pyjit._engine import (
    Engine,
    EngineError,
    JournalError,
    MessageError,
    ProgramError,
    TokenConflict,
)

from .conftest import NOW_MS, Body, program_file


def available(engine: Engine) -> int:
    account = engine.account("biz")
    assert account is not None
    return account.available_minor


def held(engine: Engine) -> int:
    account = engine.account("biz")
    assert account is not None
    return account.held_minor


def test_module_exposes_version_and_error_hierarchy() -> None:
    assert isinstance(engine_module.__version__, str)
    for error in (MessageError, TokenConflict, ProgramError, JournalError):
        assert issubclass(error, EngineError)
    assert issubclass(EngineError, ValueError)


def test_two_cards_on_one_account_approve_exactly_one(engine: Engine, body: Body) -> None:
    first = engine.decide(body("t1", amount="80.00", card="card_a"), NOW_MS)
    second = engine.decide(body("t2", amount="30.00", card="card_b"), NOW_MS)
    assert [first.approved, second.approved].count(True) == 1
    assert available(engine) in (2000, 7000)
    assert second.status == 402
    assert json.loads(second.body)["jit_funding"]["decline_reason"] == "INSUFFICIENT_FUNDS"


def test_count_limit_five_of_twelve(body: Body) -> None:
    engine = Engine()
    control = {"token": "vc", "name": "Five", "usage_limit": 5, "velocity_window": "DAY"}
    engine.load(program_file(velocitycontrols=[control]), NOW_MS)
    outcomes = [engine.decide(body(f"c{i}", amount="1.00"), NOW_MS) for i in range(12)]
    assert sum(o.approved for o in outcomes) == 5
    reasons = {o.decline_reason for o in outcomes if not o.approved}
    assert reasons == {"TRANSACTION_COUNT_LIMIT_EXCEEDED"}


def test_reversal_delivered_twice_releases_once(engine: Engine, body: Body) -> None:
    engine.decide(body("a1", amount="50.00"), NOW_MS)
    reversal = body("r1", "pgfs.authorization.reversal", "50.00", original="a1")
    first = engine.decide(reversal, NOW_MS)
    second = engine.decide(reversal, NOW_MS)
    assert second.replayed and second.entry is None
    assert first.body == second.body
    assert available(engine) == 10000


def test_clearings_smaller_and_larger_than_the_hold(body: Body) -> None:
    engine = Engine()
    engine.load(program_file("200.00"), NOW_MS)
    engine.decide(body("a1", amount="100.00"), NOW_MS)
    clearing = engine.decide(
        body("k1", "pgfs.authorization.capture", "60.00", original="a1"), NOW_MS
    )
    assert clearing.entry is not None
    assert clearing.entry.posted_delta_minor == -6000
    assert clearing.entry.held_delta_minor == -10000
    engine.decide(body("a2", amount="50.00"), NOW_MS)
    engine.decide(body("k2", "pgfs.authorization.capture", "57.50", original="a2"), NOW_MS)
    account = engine.account("biz")
    assert account is not None
    assert account.posted_minor == 20000 - 6000 - 5750
    assert account.held_minor == 0


def test_hotel_incremental(body: Body) -> None:
    engine = Engine()
    engine.load(program_file("500.00"), NOW_MS)
    engine.decide(body("h1", amount="200.00"), NOW_MS)
    engine.decide(body("h2", "pgfs.authorization.incremental", "50.00", original="h1"), NOW_MS)
    assert held(engine) == 25000
    engine.decide(body("h3", "pgfs.authorization.capture", "240.00", original="h1"), NOW_MS)
    assert held(engine) == 0
    assert available(engine) == 50000 - 24000


def test_mcc_block_and_numeric_mcc(body: Body) -> None:
    engine = Engine()
    control = {"token": "ac", "name": "No vets", "merchant_scope": {"mcc": "0742"}}
    engine.load(program_file(authcontrols=[control]), NOW_MS)
    blocked = engine.decide(body("v1", mcc="0742"), NOW_MS)
    assert blocked.decline_reason == "TRANSACTION_NOT_PERMITTED"
    assert blocked.rule_id == "ac"
    with pytest.raises(MessageError) as raised:
        engine.decide(body("v2", mcc=742), NOW_MS)
    assert raised.value.field == "card_acceptor.mcc"


@pytest.mark.parametrize("amount", [-10.00, "-10.00", "NaN", "Infinity", "", None])
def test_bad_amounts_name_the_field(engine: Engine, body: Body, amount: object) -> None:
    digest = engine.state_digest()
    with pytest.raises(MessageError) as raised:
        engine.decide(body("bad", amount=amount), NOW_MS)
    assert raised.value.field == "gpa_order.jit_funding.amount"
    assert engine.state_digest() == digest


def test_exponent_notation_is_refused(engine: Engine) -> None:
    raw = (
        b'{"card_token":"card_a","gpa_order":{"jit_funding":{"token":"e1",'
        b'"method":"pgfs.authorization","user_token":"alice","amount":1e400}}}'
    )
    with pytest.raises(MessageError, match="exponent"):
        engine.decide(raw, NOW_MS)


def test_token_conflict(engine: Engine, body: Body) -> None:
    engine.decide(body("a1", amount="5.00"), NOW_MS)
    with pytest.raises(TokenConflict):
        engine.decide(body("a1", amount="6.00"), NOW_MS)


def test_program_error_lists_problems() -> None:
    engine = Engine()
    bad = b'{"cards": [{"token": "c", "user_token": "ghost"}]}'
    with pytest.raises(ProgramError) as raised:
        engine.load(bad, NOW_MS)
    assert ("cards[0].user_token", "unknown user") in raised.value.problems
    assert engine.last_seq == 0


def test_gpa_order_token_reused_for_another_amount_is_refused() -> None:
    engine = Engine()
    funding = b'{"users": [{"token": "u"}], "gpaorders": [{"token": "g1", "user_token": "u", '
    engine.load(funding + b'"amount": "10.00"}]}', NOW_MS)

    repeated = engine.load(funding + b'"amount": "10.00"}]}', NOW_MS)
    assert "g1" not in [entry.token for entry in repeated]
    seq = engine.last_seq
    with pytest.raises(ProgramError) as raised:
        engine.load(funding + b'"amount": "999.00"}]}', NOW_MS)
    assert [path for path, _ in raised.value.problems] == ["gpaorders[0].token"]
    assert engine.last_seq == seq
    assert (account := engine.account("u")) is not None and account.posted_minor == 1000


def test_bad_program_amount_is_reported_once_and_never_through_a_float() -> None:
    engine = Engine()
    holder = b'{"users": [{"token": "u"}], "gpaorders": [{"token": "g", "user_token": "u", '
    with pytest.raises(ProgramError) as raised:
        engine.load(holder + b'"amount": "1.001"}]}', NOW_MS)
    assert [path for path, _ in raised.value.problems] == ["gpaorders[0].amount"]
    with pytest.raises(ProgramError, match="exponent"):
        engine.load(holder + b'"amount": 1e3}]}', NOW_MS)
    engine.load(holder + b'"amount": 12345678901234.57}]}', NOW_MS)
    assert (account := engine.account("u")) is not None
    assert account.posted_minor == 1234567890123457


def test_nul_text_is_refused_in_messages_and_programs(engine: Engine, body: Body) -> None:
    # PostgreSQL text cannot hold NUL: an entry carrying one could never be projected.
    seq = engine.last_seq
    with pytest.raises(MessageError) as raised:
        engine.decide(body("n1").replace(b'"pgfs.authorization"', b'"pgfs.\\u0000"'), NOW_MS)
    assert raised.value.field == "body"
    with pytest.raises(ProgramError) as refused:
        engine.load(b'{"users": [{"token": "u\\u0000"}]}', NOW_MS)
    assert [path for path, _ in refused.value.problems] == ["$"]
    assert engine.last_seq == seq

    # An escaped backslash before "u0000" is six ordinary characters, not NUL.
    literal = body("n2").replace(b'"jit_funding": {', b'"jit_funding": {"memo": "a\\\\u0000",', 1)
    assert b"\\\\u0000" in literal
    assert engine.decide(literal, NOW_MS).status == 200


def test_methods_that_must_not_crash(engine: Engine, body: Body) -> None:
    for token, method in [
        ("m1", "pgfs.refund.authorization.reversal"),
        ("m2", "pgfs.billpayment"),
        ("m3", "pgfs.force_capture"),
        ("m4", "pgfs.something.new"),
    ]:
        outcome = engine.decide(body(token, method, "1.00"), NOW_MS)
        assert outcome.status in (200, 402)
        assert outcome.method == method


def test_void_and_unknown_token(engine: Engine, body: Body) -> None:
    engine.decide(body("a1", amount="40.00"), NOW_MS)
    voided = engine.void("a1", NOW_MS)
    assert voided.status == 402
    assert voided.entry is not None and voided.entry.kind == "void"
    assert available(engine) == 10000
    with pytest.raises(KeyError):
        engine.void("never", NOW_MS)


def test_journal_and_snapshot_rebuild_the_same_state(body: Body) -> None:
    engine = Engine()
    journal = [entry.data for entry in engine.load(program_file(), NOW_MS)]
    for index in range(5):
        outcome = engine.decide(body(f"t{index}", amount="7.00"), NOW_MS)
        if outcome.entry is not None:
            journal.append(outcome.entry.data)
    fresh = Engine()
    assert fresh.apply_many(journal) == len(journal)
    assert fresh.state_digest() == engine.state_digest()
    assert fresh.last_seq == engine.last_seq
    restored = Engine.restore(engine.snapshot())
    assert restored.state_digest() == engine.state_digest()
    with pytest.raises(JournalError):
        fresh.apply(journal[0])


def test_a_frozen_copy_keeps_its_moment_while_the_engine_goes_on(
    engine: Engine, body: Body
) -> None:
    engine.decide(body("f1", amount="10.00"), NOW_MS)
    before = engine.snapshot()

    frozen = engine.frozen()
    engine.decide(body("f2", amount="20.00"), NOW_MS)

    assert frozen.last_seq == engine.last_seq - 1
    assert frozen.snapshot() == before
    assert Engine.restore(frozen.snapshot()).last_seq == frozen.last_seq
    assert engine.snapshot() != before


def test_program_file_refuses_unknown_collections_and_empty_orders() -> None:
    engine = Engine()
    file = json.loads(program_file())
    file["velocity_controls"] = []
    file["gpaorders"].append({"token": "zero", "business_token": "biz", "amount": "0.00"})

    with pytest.raises(ProgramError) as refused:
        engine.load(json.dumps(file).encode(), NOW_MS)

    assert sorted(refused.value.problems) == [
        ("gpaorders[1].amount", "must be more than zero"),
        ("velocity_controls", "unknown collection"),
    ]
    assert engine.last_seq == 0


@pytest.mark.parametrize(
    "where",
    ["jit_funding", "card_acceptor", "gpa_order", "body"],
)
def test_an_array_is_never_read_as_an_object(engine: Engine, body: Body, where: str) -> None:
    message = json.loads(body("arr", amount="3.00"))
    funding = message["gpa_order"]["jit_funding"]
    if where == "jit_funding":
        message["gpa_order"]["jit_funding"] = list(funding.values())
    elif where == "card_acceptor":
        message["card_acceptor"] = list(message["card_acceptor"].values())
    elif where == "gpa_order":
        message["gpa_order"] = [funding]
    else:
        message = [message]
    before = engine.last_seq

    with pytest.raises(MessageError, match="expected an object"):
        engine.decide(json.dumps(message).encode(), NOW_MS)

    assert engine.last_seq == before
    assert json.loads(engine.holds("biz")) == []
