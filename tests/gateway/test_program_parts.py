"""Proves that a program file too large for one load is refused by the gateway with a 413
and nothing applied, and that `pyjit load` sends it in ordered parts that together load all
of it, amounts exact, with a refused part's problems named by their place in the file."""

import decimal
import io
import json

import asyncpg
import orjson
import pytest
from rich.console import Console

from pyjit._engine import Engine, ProgramError
from pyjit.decider import PROGRAM_BODY_MAX
from pyjit.gateway_client import GatewayClient
from pyjit.program import COLLECTIONS, ProgramFileError, load_program, parts_of
from tests.gateway.conftest import AUTH, PASSWORD, USERNAME, Gateway

EXACT = "12345678901234.57"


def large_file(users: int = 12_000, bad_card: int | None = None) -> bytes:
    """A program over 1 MiB: users with a card each, funded by orders whose amounts are JSON
    numbers that a float would not keep."""
    cards = [
        {"token": f"c{n}", "user_token": f"u{n}", "card_product_token": "p1"} for n in range(users)
    ]
    if bad_card is not None:
        cards[bad_card]["user_token"] = "nobody"
    text = orjson.dumps(
        {
            "gpaorders": [{"token": "g0", "user_token": "u0", "amount": 0}],
            "program": {"token": "big", "currency_code": "USD"},
            "cardproducts": [{"token": "p1", "name": "Big"}],
            "users": [{"token": f"u{n}", "first_name": "Big"} for n in range(users)],
            "cards": cards,
        }
    )
    # orjson writes numbers through floats: put the exact amount in as text.
    return text.replace(b'"amount":0', f'"amount":{EXACT}'.encode())


def objects(body: bytes) -> list[tuple[str, dict[str, object]]]:
    document = json.loads(body, parse_float=decimal.Decimal)
    return [(key, item) for key in COLLECTIONS for item in document.get(key, [])]


def test_a_large_file_is_cut_in_the_engines_order_and_keeps_amounts_exact() -> None:
    body = large_file()

    parts = parts_of(body)

    assert len(body) > PROGRAM_BODY_MAX and len(parts) >= 2
    assert all(len(part.body) <= PROGRAM_BODY_MAX for part in parts)
    assert orjson.loads(parts[0].body)["program"] == {"token": "big", "currency_code": "USD"}
    pieces = [objects(part.body) for part in parts]
    # Amounts arrive as text with every digit: what the engine reads from the number.
    joined = [
        (key, {**item, "amount": decimal.Decimal(item["amount"])} if key == "gpaorders" else item)
        for piece in pieces
        for key, item in piece
    ]
    assert joined == objects(body)
    assert '"amount":"' + EXACT + '"' in b"".join(part.body for part in parts).decode()
    second = parts[1]
    collection, start = next(iter(second.starts.items()))
    assert second.in_file(f"{collection}[3].user_token") == f"{collection}[{start + 3}].user_token"


def test_many_small_objects_are_cut_by_count_as_well_as_by_size() -> None:
    # 25,000 users of a few bytes each: under 1 MiB, but each object costs the engine time.
    body = orjson.dumps({"users": [{"token": f"k{n}"} for n in range(25_000)]})
    engine = Engine()

    parts = parts_of(body)
    with pytest.raises(ProgramError) as refused:
        engine.load(body, 1_710_331_200_000)

    assert len(body) < PROGRAM_BODY_MAX
    assert [len(orjson.loads(part.body)["users"]) for part in parts] == [10_000, 10_000, 5_000]
    assert refused.value.problems[0][0] == "$" and engine.last_seq == 0


def test_numbers_keep_their_own_text_in_parts() -> None:
    # Exponent notation is refused in one load; cut into parts it must be refused alike.
    padding = [{"token": f"pad{n}", "first_name": "x" * 200} for n in range(6_000)]
    body = orjson.dumps({"users": [{"token": "u"}, *padding]})[:-1] + (
        b',"gpaorders":[{"token":"g","user_token":"u","amount":1.5E+1}]}'
    )

    parts = parts_of(body)

    assert len(parts) >= 2
    assert b'"amount":"1.5E+1"' in parts[-1].body


def test_an_object_larger_than_a_load_is_named_before_anything_is_sent() -> None:
    body = orjson.dumps(
        {"users": [{"token": "u0"}, {"token": "u1", "first_name": "x" * PROGRAM_BODY_MAX}]}
    )

    with pytest.raises(ProgramFileError, match=r"users\[1\] is"):
        parts_of(body)


def test_a_small_file_goes_as_it_is() -> None:
    body = b'{"users": [{"token": "u1"}], "gpaorders": []}'
    assert [part.body for part in parts_of(body)] == [body]


async def test_the_gateway_refuses_a_file_over_a_load_and_pyjit_load_sends_it_in_parts(
    gateway: Gateway,
) -> None:
    body = large_file()
    before = await gateway.journal_count()

    async with gateway.session.post(
        f"{gateway.url}/admin/program", data=io.BytesIO(body), headers={"Authorization": AUTH}
    ) as response:
        status, answer = response.status, orjson.loads(await response.read())
    after_refusal = await gateway.journal_count()
    output = io.StringIO()
    async with GatewayClient(gateway.url, (USERNAME, PASSWORD)) as client:
        loaded = await load_program(client, body, Console(file=output, width=200))

    assert status == 413 and answer["limit_bytes"] == PROGRAM_BODY_MAX, answer
    assert after_refusal == before
    assert loaded, output.getvalue()
    assert "each whole or not at all" in output.getvalue()
    # Every user, card and the exact funding: 1 product + 12,000 users + 12,000 cards + 1.
    assert await gateway.journal_count() == before + 1 + 1 + 24_000 + 1
    connection = await asyncpg.connect(gateway.database_url)
    try:
        funded = await connection.fetchval(
            "SELECT sum(posted_delta_minor) FROM journal WHERE account_token = 'u0'"
        )
    finally:
        await connection.close()
    assert funded == 1234567890123457


async def test_a_refused_part_names_the_problem_where_it_is_in_the_file(
    gateway: Gateway,
) -> None:
    body = large_file(bad_card=11_000)
    output = io.StringIO()

    async with GatewayClient(gateway.url, (USERNAME, PASSWORD)) as client:
        loaded = await load_program(client, body, Console(file=output, width=200))

    text = output.getvalue()
    assert not loaded
    assert "cards[11000].user_token: unknown user" in text, text
    assert "parts before it are loaded" in text
