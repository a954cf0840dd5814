"""Hypothesis drives random lifecycles through the binding across cards sharing accounts
and checks after every step that available = posted - held + line, that posted balances
equal the sum of the journal's posted deltas, and that applying the journal to a fresh
engine and restoring a snapshot both give the same digest and the same answers."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyjit._engine import Engine

from .conftest import NOW_MS, jit_body, program_file

METHODS = [
    "pgfs.authorization",
    "pgfs.authorization.incremental",
    "pgfs.authorization.reversal",
    "pgfs.authorization.capture",
    "pgfs.refund",
    "pgfs.force_capture",
    "pgfs.auth_plus_capture",
]

steps = st.lists(
    st.tuples(
        st.sampled_from(METHODS),
        st.sampled_from(["card_a", "card_b"]),
        st.integers(min_value=1, max_value=6000),
        st.integers(min_value=0, max_value=20),
    ),
    min_size=1,
    max_size=40,
)


def amount(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_random_lifecycles_keep_the_books(plan: list[tuple[str, str, int, int]]) -> None:
    engine = Engine()
    journal = [entry.data for entry in engine.load(program_file(), NOW_MS)]
    chains: list[str] = []
    sent: list[bytes] = []
    for index, (method, card, cents, pick) in enumerate(plan):
        token = f"t{index}"
        original = None
        if method != "pgfs.authorization" and chains and "refund" not in method:
            original = chains[pick % len(chains)]
        if method == "pgfs.authorization":
            chains.append(token)
        body = jit_body(token, method, amount(cents), card, original)
        outcome = engine.decide(body, NOW_MS)
        sent.append(body)
        if outcome.entry is not None:
            journal.append(outcome.entry.data)
        for account in engine.accounts():
            expected = account.posted_minor - account.held_minor + account.credit_line_minor
            assert account.available_minor == expected
            assert account.held_minor >= 0
        posted = sum(
            effect["delta_minor"]
            for data in journal
            for effect in json.loads(data)["effects"]
            if effect["op"] == "posted" and effect["account"] == "biz"
        )
        business = engine.account("biz")
        assert business is not None and business.posted_minor == posted

    fresh = Engine()
    fresh.apply_many(journal)
    restored = Engine.restore(engine.snapshot())
    assert fresh.state_digest() == engine.state_digest() == restored.state_digest()
    for body in sent:
        answers = {
            (e.decide(body, NOW_MS).status, e.decide(body, NOW_MS).body)
            for e in (engine, fresh, restored)
        }
        assert len(answers) == 1
