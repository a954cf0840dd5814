"""The consumers on a real `pyjit serve` with the PostgreSQL queue: it proves each kind of
reconciliation reaches the ledger through the decider exactly once — a repeated delivery
(two of them at once) has one effect, an approval the processor declined for lateness is
undone, a stand-in approval is applied, a clearing the gateway already saw through JIT is
not counted again, an event that arrives before its parent waits and then applies, and a
poison event is dead-lettered after 5 attempts while the events behind it go through."""

import asyncio
from collections.abc import Awaitable, Callable

import orjson
from wh_support import PROGRAM, Served, transaction

Start = Callable[..., Awaitable[Served]]
DONE = "SELECT count(*) FROM webhook_queue WHERE done_at IS NULL AND dead_at IS NULL"
APPLIED = "SELECT outcome FROM webhook_events WHERE event_token = $1"


async def _served(database_url: str, start: Start) -> Served:
    served = await start(database_url)
    await served.load(PROGRAM)
    return served


async def _settled(served: Served) -> None:
    await served.wait_for(DONE, expect=0)
    await served.wait_for("SELECT count(*) FROM webhook_parked", expect=0)


async def test_three_deliveries_two_at_once_have_one_effect(
    database_url: str, start: Start
) -> None:
    served = await _served(database_url, start)
    body = orjson.dumps({"transactions": [transaction("t1", "j1", amount="12.34")]})

    statuses = await asyncio.gather(served.deliver(body), served.deliver(body))
    assert [status for status, _ in statuses] == [200, 200]
    await served.wait_for(APPLIED, "t1", expect="stand-in-applied")
    assert (await served.deliver(body))[0] == 200
    await _settled(served)

    assert await served.account("u1") == (10_000, 1_234)
    journal = await served.fetch("SELECT count(*) FROM journal WHERE token = 'j1'")
    assert journal[0][0] == 1
    queued = await served.fetch("SELECT count(*) FROM webhook_queue WHERE event_token = 't1'")
    assert queued[0][0] == 3


async def test_late_approval_is_undone_once(database_url: str, start: Start) -> None:
    served = await _served(database_url, start)
    approved = transaction("t1", "j1", amount="20.00")
    status, _ = await served.jit(orjson.dumps(approved))
    assert status == 200
    assert await served.account("u1") == (10_000, 2_000)

    declined = transaction("t1", "j1", amount="20.00", state="DECLINED", timed_out=True)
    body = orjson.dumps({"transactions": [declined]})
    assert (await served.deliver(body))[0] == 200
    await served.wait_for(APPLIED, "t1", expect="undone")
    assert (await served.deliver(body))[0] == 200
    await _settled(served)

    assert await served.account("u1") == (10_000, 0)


async def test_clearing_seen_through_jit_is_not_counted_twice(
    database_url: str, start: Start
) -> None:
    served = await _served(database_url, start)
    authorization = transaction("t1", "j1", amount="30.00")
    clearing = transaction(
        "t2",
        "j2",
        kind="authorization.clearing",
        method="pgfs.authorization.capture",
        amount="25.00",
        state="COMPLETION",
        original="j1",
    )
    for message in (authorization, clearing):
        assert (await served.jit(orjson.dumps(message)))[0] == 200
    assert await served.account("u1") == (7_500, 0)

    body = orjson.dumps({"transactions": [authorization, clearing]})
    assert (await served.deliver(body))[0] == 200
    await served.wait_for(APPLIED, "t2", expect="seen-through-jit")
    await _settled(served)
    assert await served.account("u1") == (7_500, 0)


async def test_reversal_before_its_authorization_leaves_no_hold(
    database_url: str, start: Start
) -> None:
    served = await _served(database_url, start)
    reversal = transaction(
        "t2",
        "j2",
        kind="authorization.reversal",
        method="pgfs.authorization.reversal",
        amount="15.00",
        state="COMPLETION",
        original="j1",
    )
    assert (await served.deliver({"transactions": [reversal]}))[0] == 200
    await served.wait_for("SELECT waiting_for FROM webhook_parked", expect="j1")
    assert await served.account("u1") == (10_000, 0)

    authorization = transaction("t1", "j1", amount="15.00")
    assert (await served.deliver({"transactions": [authorization]}))[0] == 200
    await served.wait_for(APPLIED, "t2", expect="applied-unseen")
    await _settled(served)

    assert await served.account("u1") == (10_000, 0)
    holds = await served.fetch("SELECT state, amount_minor FROM holds WHERE hold_token = 'j1'")
    assert [tuple(row) for row in holds] == [("REVERSED", 0)]


async def test_poison_event_is_dead_after_five_attempts_and_the_rest_go_on(
    database_url: str, start: Start
) -> None:
    served = await _served(database_url, start)
    poison = transaction("t1", "j1", amount="not-a-number")
    healthy = transaction("t2", "j2", amount="5.00")
    assert (await served.deliver({"transactions": [poison, healthy]}))[0] == 200

    await served.wait_for(APPLIED, "t2", expect="stand-in-applied")
    await served.wait_for(
        "SELECT attempts FROM webhook_queue WHERE event_token = 't1' AND dead_at IS NOT NULL",
        expect=5,
    )
    assert await served.account("u1") == (10_000, 500)
    assert await served.fetch(APPLIED, "t1") == []
    await asyncio.sleep(1.2)
    async with served.session.get(f"{served.url}/metrics") as response:
        metrics = await response.text()
    assert 'pyjit_webhook_retries_total{type="event"} 4.0' in metrics
    assert 'pyjit_webhook_dead_letters_total{type="event"} 1.0' in metrics
    assert 'pyjit_webhook_queue_depth{queue="postgres"} 0.0' in metrics


async def test_card_transition_waits_for_its_card(database_url: str, start: Start) -> None:
    served = await _served(database_url, start)
    suspended = {
        "token": "ct1",
        "card_token": "c2",
        "state": "SUSPENDED",
        "type": "state.suspended",
        "channel": "API",
        "reason_code": "00",
    }
    assert (await served.deliver({"cardtransitions": [suspended]}))[0] == 200
    await served.wait_for("SELECT waiting_for FROM webhook_parked", expect="c2")

    card = {"token": "c2", "user_token": "u1", "card_product_token": "p1"}
    await served.load({"cards": [card]})
    await served.wait_for(APPLIED, "ct1", expect="state-applied")

    swipe = orjson.loads(orjson.dumps(transaction("t9", "j9", amount="1.00")))
    swipe["card_token"] = "c2"
    status, answer = await served.jit(orjson.dumps(swipe))
    assert status == 402
    assert answer["jit_funding"]["decline_reason"] == "CARD_NOT_ACTIVE"
    states = await served.fetch("SELECT state FROM webhook_states WHERE object_token = 'c2'")
    assert [row[0] for row in states] == ["SUSPENDED"]


async def test_late_decline_waits_for_a_decision_still_committing(
    database_url: str, start: Start
) -> None:
    served = await _served(database_url, start)
    late = transaction("t1", "j1", amount="20.00", state="DECLINED", timed_out=True)
    assert (await served.deliver({"transactions": [late]}))[0] == 200
    await served.wait_for("SELECT waiting_for FROM webhook_parked", expect="j1")

    approved = transaction("t1", "j1", amount="20.00")
    assert (await served.jit(orjson.dumps(approved)))[0] == 200
    await served.wait_for(APPLIED, "t1", expect="undone")
    assert await served.account("u1") == (10_000, 0)


async def test_late_decline_the_gateway_never_saw_is_settled_after_a_while(
    database_url: str, start: Start
) -> None:
    served = await _served(database_url, start)
    late = transaction("t1", "j1", amount="20.00", state="DECLINED", timed_out=True)
    assert (await served.deliver({"transactions": [late]}))[0] == 200
    await served.wait_for("SELECT waiting_for FROM webhook_parked", expect="j1")
    # Skip the ~50 s of patience: the row has waited as often as it ever will.
    await served.fetch("UPDATE webhook_parked SET attempts = 10, retry_at = now()")
    await served.wait_for(APPLIED, "t1", expect="declined-unseen")
    assert await served.fetch("SELECT * FROM webhook_parked") == []
    assert await served.account("u1") == (10_000, 0)
