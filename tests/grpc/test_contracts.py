"""Every pyjit.v1 contract round-trips through a real `pyjit serve --role decider` process
over loopback gRPC: decisions (raw, structured, streaming), balances, holds, transactions,
card commands under the processor's state rules, controls and "available", program loads,
health and reflection; and malformed requests come back INVALID_ARGUMENT naming the field."""

import asyncio
from collections.abc import AsyncIterator

import grpc
import orjson
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from pyjit.rpc.errors import detail_of
from pyjit.v1 import (
    accounts_pb2,
    accounts_pb2_grpc,
    cards_pb2,
    cards_pb2_grpc,
    common_pb2,
    controls_pb2,
    controls_pb2_grpc,
    jit_pb2,
    jit_pb2_grpc,
    program_pb2,
    program_pb2_grpc,
)
from tests.grpc.cluster import Cluster, jit_body, program, wait_serving


@pytest.fixture
async def channel(cluster: Cluster, database_url: str) -> AsyncIterator[grpc.aio.Channel]:
    decider = cluster.start("decider", database_url)
    await wait_serving(decider)
    async with grpc.aio.insecure_channel(decider.grpc_addr) as opened:
        loader = program_pb2_grpc.ProgramStub(opened)
        reply = await loader.LoadProgram(
            program_pb2.LoadProgramRequest(document=orjson.dumps(program("50.00", users=2)))
        )
        assert reply.entries > 0 and reply.last_seq >= reply.entries
        yield opened


def usd(minor: int) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=minor, currency="USD")


async def refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_decide_raw_and_structured_with_reason_rule_and_numbers(
    channel: grpc.aio.Channel,
) -> None:
    jit = jit_pb2_grpc.JitStub(channel)

    approved = await jit.Decide(jit_pb2.DecideRequest(raw=jit_body("a1", "30.00"), request_id="r1"))
    assert approved.request_id == "r1"
    assert approved.decision.approved and approved.decision.http_status == 200
    assert approved.decision.amount == usd(3000)
    assert orjson.loads(approved.decision.body)["jit_funding"]["token"] == "a1"

    fields = jit_pb2.JitMessage(
        token="a2",
        method="pgfs.authorization",
        card_token="c1",
        user_token="u1",
        amount=usd(2500),
        merchant=common_pb2.Merchant(mid="m1", mcc="5411", name="Grocer", country_code="USA"),
        created_time="2025-03-01T12:00:00Z",
    )
    declined = (await jit.Decide(jit_pb2.DecideRequest(fields=fields))).decision
    assert not declined.approved and declined.http_status == 402
    assert declined.decline_reason == "INSUFFICIENT_FUNDS"
    assert declined.rule_id and declined.rule_name
    assert "20.00" in declined.memo and declined.amount == usd(2500)

    again = (await jit.Decide(jit_pb2.DecideRequest(fields=fields))).decision
    assert again.replayed and again.body == declined.body


async def test_stream_answers_every_request_by_id(channel: grpc.aio.Channel) -> None:
    jit = jit_pb2_grpc.JitStub(channel)
    requests = [
        jit_pb2.DecideRequest(
            raw=jit_body(f"s{n}", "1.00", card="c2", user="u2"), request_id=str(n)
        )
        for n in range(60)
    ]
    requests.append(jit_pb2.DecideRequest(raw=b"{not json", request_id="bad"))
    # Ten batches of six and a last one of one: both ways a batch is decided.
    batches = [requests[start : start + 6] for start in range(0, len(requests), 6)]

    async def send() -> AsyncIterator[jit_pb2.DecideBatch]:
        for batch in batches:
            yield jit_pb2.DecideBatch(requests=batch)

    replies = [reply async for reply in jit.DecideStream(send())]
    answers = {answer.request_id: answer for reply in replies for answer in reply.responses}

    assert len(replies) == len(batches)
    assert set(answers) == {request.request_id for request in requests}
    assert answers["bad"].error_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    approved = [a for key, a in answers.items() if key != "bad" and a.decision.approved]
    # 50.00 funds fifty 1.00 authorizations and no more: one writer, no double spend.
    assert len(approved) == 50


async def test_balance_holds_and_transactions(channel: grpc.aio.Channel) -> None:
    jit = jit_pb2_grpc.JitStub(channel)
    accounts = accounts_pb2_grpc.AccountsStub(channel)
    await jit.Decide(jit_pb2.DecideRequest(raw=jit_body("h1", "12.34")))

    balance = await accounts.GetBalance(accounts_pb2.GetBalanceRequest(account_token="u1"))
    assert balance.posted == usd(5000) and balance.held == usd(1234)
    assert balance.available == usd(5000 - 1234)

    holds = await accounts.ListHolds(accounts_pb2.ListHoldsRequest(account_token="u1"))
    assert [(hold.token, hold.amount.amount_minor) for hold in holds.holds] == [("h1", 1234)]

    listed: list[accounts_pb2.Transaction] = []
    for _ in range(100):  # the read model follows the journal by a few milliseconds
        reply = await accounts.ListTransactions(
            accounts_pb2.ListTransactionsRequest(card_token="c1")
        )
        listed = list(reply.transactions)
        if listed:
            break
        await asyncio.sleep(0.05)
    assert [(t.token, t.amount.amount_minor, t.approved) for t in listed] == [("h1", 1234, True)]

    error = await refused(accounts.GetBalance(accounts_pb2.GetBalanceRequest(account_token="nope")))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_card_commands_follow_the_processors_state_rules(channel: grpc.aio.Channel) -> None:
    cards = cards_pb2_grpc.CardsStub(channel)
    jit = jit_pb2_grpc.JitStub(channel)
    issued = await cards.IssueCard(
        cards_pb2.IssueCardRequest(token="c9", user_token="u1", card_product_token="p1")
    )
    assert issued.state == "UNACTIVATED"

    inactive = await jit.Decide(jit_pb2.DecideRequest(raw=jit_body("k1", "1.00", card="c9")))
    assert inactive.decision.decline_reason == "CARD_NOT_ACTIVE"

    move = cards_pb2.CardTransitionRequest
    error = await refused(cards.ReinstateCard(move(card_token="c9")))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert detail_of(error).reason == "CARD_STATE_TRANSITION"

    assert (await cards.ActivateCard(move(card_token="c9"))).state == "ACTIVE"
    assert (await cards.SuspendCard(move(card_token="c9"))).state == "SUSPENDED"
    assert (await cards.ReinstateCard(move(card_token="c9"))).state == "ACTIVE"
    assert (await cards.TerminateCard(move(card_token="c9"))).state == "TERMINATED"
    final = await refused(cards.ActivateCard(move(card_token="c9")))
    assert final.code() == grpc.StatusCode.FAILED_PRECONDITION

    assert (await cards.GetCard(cards_pb2.GetCardRequest(token="c9"))).state == "TERMINATED"
    exists = await refused(
        cards.IssueCard(
            cards_pb2.IssueCardRequest(token="c9", user_token="u1", card_product_token="p1")
        )
    )
    assert exists.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_controls_and_available(channel: grpc.aio.Channel) -> None:
    controls = controls_pb2_grpc.ControlsStub(channel)
    jit = jit_pb2_grpc.JitStub(channel)
    daily = controls_pb2.VelocityControl(
        token="v1",
        name="daily",
        association=controls_pb2.Association(user_token="u1"),
        usage_limit=3,
        amount_limit=usd(2000),
        velocity_window="DAY",
        include_purchases=True,
        active=True,
    )
    assert (await controls.PutVelocityControl(daily)).amount_limit == usd(2000)
    group = controls_pb2.MccGroup(token="g-food", name="food", mccs=["5811-5814", "5411"])
    assert list((await controls.PutMccGroup(group)).mccs) == ["5811-5814", "5411"]
    block = controls_pb2.AuthControl(
        token="b1",
        name="no bars",
        merchant_scope=controls_pb2.MerchantScope(mcc="5813"),
        active=True,
    )
    assert (await controls.PutAuthControl(block)).mode == "BLOCK"

    await jit.Decide(jit_pb2.DecideRequest(raw=jit_body("v-a", "5.00")))
    listed = await controls.ListControls(controls_pb2.ListControlsRequest())
    assert [c.token for c in listed.velocity_controls] == ["v1"]
    assert [c.token for c in listed.auth_controls] == ["b1"]

    # The message's own date is in 2025, so "now" for the window is that day.
    available = await controls.GetAvailable(
        controls_pb2.GetAvailableRequest(user_token="u1", at_ms=1_740_830_400_000)
    )
    [left] = available.available
    assert left.token == "v1" and left.uses == 2 and left.amount == usd(1500)
    assert left.days_remaining == 1

    await controls.DeactivateControl(controls_pb2.DeactivateControlRequest(token="v1"))
    listed = await controls.ListControls(controls_pb2.ListControlsRequest())
    assert not listed.velocity_controls[0].active


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (jit_pb2.DecideRequest(), "message"),
        (
            jit_pb2.DecideRequest(fields=jit_pb2.JitMessage(method="pgfs.authorization")),
            "fields.token",
        ),
        (
            jit_pb2.DecideRequest(
                fields=jit_pb2.JitMessage(
                    token="x",
                    method="pgfs.authorization",
                    card_token="c1",
                    user_token="u1",
                    amount=common_pb2.Money(amount_minor=100, currency="usd"),
                )
            ),
            "fields.amount.currency",
        ),
        (jit_pb2.DecideRequest(raw=jit_body("x2", "1.001")), "gpa_order.jit_funding.amount"),
    ],
)
async def test_malformed_requests_name_the_field(
    channel: grpc.aio.Channel, request_: jit_pb2.DecideRequest, field: str
) -> None:
    error = await refused(jit_pb2_grpc.JitStub(channel).Decide(request_))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    detail = detail_of(error)
    assert detail.field == field and detail.reason == "INVALID_FIELD"
    # The field is named once, at the head of the message.
    assert detail.message.startswith(f"{field}: ") and detail.message.count(field) == 1, detail


async def test_bad_program_names_the_field(channel: grpc.aio.Channel) -> None:
    document = {"cards": [{"token": "c7", "user_token": "nobody", "card_product_token": "p1"}]}
    error = await refused(
        program_pb2_grpc.ProgramStub(channel).LoadProgram(
            program_pb2.LoadProgramRequest(document=orjson.dumps(document))
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert detail_of(error).field == "cards[0].user_token"


async def test_health_and_reflection(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service="pyjit.v1.Jit"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING

    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def ask() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names = set()
    async for answer in reflection.ServerReflectionInfo(ask()):
        names |= {service.name for service in answer.list_services_response.service}
    expected = {"pyjit.v1.Jit", "pyjit.v1.Accounts", "pyjit.v1.Cards", "pyjit.v1.Controls"}
    assert expected | {"pyjit.v1.Program", "grpc.health.v1.Health"} <= names
