"""Proves the HTTP edge's contract with the processor, on a real gateway and a real database:
bad input is a clear 4xx naming the field, logged with the token, and journals nothing; bad
credentials are a 401 that journals nothing; a token sent three times (two of them at once)
has one effect and gets three identical bodies; 200 concurrent authorizations on an account
with money for 50 approve exactly 50; every decision logs one line without card data;
/health and /ready describe the process; a bad program file is refused whole with the path
of each bad field."""

import asyncio
import gzip
import logging
from typing import Any

import orjson
import pytest

from pyjit import edge
from tests.gateway.conftest import AUTH, Gateway, jit_body, program


def rejected_records(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    records = [r for r in caplog.records if r.getMessage() == "rejected"]
    return [vars(record)["fields"] for record in records]


async def loaded(gateway: Gateway, balance: str = "50.00") -> int:
    status, answer = await gateway.admin("POST", "/admin/program", program(balance))
    assert status == 200, answer
    return await gateway.journal_count()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"gpa_order": {"jit_funding": ', "$"),
        (orjson.dumps({"token": "t", "card_token": "c1"}), "gpa_order.jit_funding"),
        (jit_body("bad-amount", amount="1.001"), "gpa_order.jit_funding.amount"),
        (jit_body("bad-type", amount={"value": 1}), "gpa_order.jit_funding.amount"),
        (
            orjson.dumps(
                {
                    "gpa_order": {
                        "jit_funding": {
                            "token": 7,
                            "method": "pgfs.authorization",
                            "amount": "1.00",
                        }
                    }
                }
            ),
            "gpa_order.jit_funding.token",
        ),
    ],
    ids=["malformed-json", "no-jit-funding", "too-many-decimals", "amount-object", "token-int"],
)
async def test_bad_input_is_400_naming_the_field(
    gateway: Gateway, caplog: pytest.LogCaptureFixture, body: bytes, field: str
) -> None:
    before = await loaded(gateway)
    caplog.set_level(logging.INFO)

    status, answer = await gateway.jit(body)

    assert status == 400
    payload = orjson.loads(answer)
    assert payload["field"].startswith(field), payload
    # The message is about the field the answer names, named once.
    assert payload["error"].startswith(payload["field"] + ": "), payload
    assert payload["error"].count(payload["field"] + ":") == 1, payload
    assert await gateway.journal_count() == before
    assert any(line["field"] == payload["field"] for line in rejected_records(caplog))


async def test_body_over_64_kb_is_400(gateway: Gateway) -> None:
    before = await loaded(gateway)
    body = jit_body("big")[:-1] + b', "padding": "' + b"x" * 70_000 + b'"}'
    status, answer = await gateway.jit(body)
    assert status == 400
    assert orjson.loads(answer)["field"] == "body"
    assert await gateway.journal_count() == before


async def test_a_chunked_body_is_cut_off_once_it_passes_64_kb(gateway: Gateway) -> None:
    before = await loaded(gateway)
    sent = 0

    async def endless() -> Any:
        # Up to 64 MB, the admin endpoints' limit, in 16 KB chunks with no declared length.
        nonlocal sent
        for _ in range(4096):
            sent += 16_384
            yield b"x" * 16_384

    headers = {"Authorization": AUTH, "Content-Type": "application/json"}
    async with gateway.session.post(
        f"{gateway.url}/jit", data=endless(), headers=headers
    ) as response:
        status, answer = response.status, await response.read()

    assert status == 400
    assert orjson.loads(answer)["field"] == "body"
    # The answer came long before the client could send everything.
    assert sent < 8 * 1024 * 1024, sent
    assert await gateway.journal_count() == before


async def test_a_compressed_body_is_refused_before_it_is_inflated(gateway: Gateway) -> None:
    before = await loaded(gateway)
    # 10 MB of spaces in about 10 KB: measured only after inflating, it would pass 64 KB.
    bomb = gzip.compress(b" " * 10_000_000)
    headers = {"Authorization": AUTH, "Content-Encoding": "gzip"}

    async with gateway.session.post(f"{gateway.url}/jit", data=bomb, headers=headers) as sent:
        status, answer = sent.status, orjson.loads(await sent.read())
    async with gateway.session.post(
        f"{gateway.url}/admin/program", data=bomb, headers=headers
    ) as sent:
        program_status = sent.status

    assert (status, answer["field"]) == (415, "body"), answer
    assert "gzip" in answer["error"]
    assert program_status == 415
    assert await gateway.journal_count() == before


async def test_a_body_that_stops_arriving_is_408(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    await loaded(gateway)
    monkeypatch.setattr(edge, "BODY_READ_TIMEOUT_S", 0.3)
    release = asyncio.Event()

    async def stalls() -> Any:
        yield b'{"token": '
        await release.wait()

    headers = {"Authorization": AUTH, "Content-Type": "application/json"}
    try:
        async with gateway.session.post(
            f"{gateway.url}/jit", data=stalls(), headers=headers
        ) as sent:
            status, answer = sent.status, orjson.loads(await sent.read())
    finally:
        release.set()

    assert (status, answer["field"]) == (408, "body"), answer


async def test_a_body_in_many_small_chunks_is_read_whole(gateway: Gateway) -> None:
    await loaded(gateway)
    body = jit_body("chunks-1", amount="10.00")

    async def trickle() -> Any:
        for start in range(0, len(body), 64):
            yield body[start : start + 64]
            await asyncio.sleep(0.001)

    headers = {"Authorization": AUTH, "Content-Type": "application/json"}
    async with gateway.session.post(f"{gateway.url}/jit", data=trickle(), headers=headers) as sent:
        status, answer = sent.status, await sent.read()

    assert (status, await gateway.jit(body)) == (200, (200, answer))


async def test_token_named_in_rejection_log(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    await loaded(gateway)
    caplog.set_level(logging.INFO)
    await gateway.jit(jit_body("decimals-1", amount="2.505"))
    assert {"token": "decimals-1", "field": "gpa_order.jit_funding.amount"}.items() <= (
        rejected_records(caplog)[-1].items()
    )


async def test_unknown_card_is_402_invalid_card(gateway: Gateway) -> None:
    before = await loaded(gateway)
    status, answer = await gateway.jit(jit_body("nocard", card="c-unknown"))
    assert status == 402
    assert orjson.loads(answer)["jit_funding"]["decline_reason"] == "INVALID_CARD"
    assert await gateway.journal_count() == before


@pytest.mark.parametrize("auth", [None, "Basic " + "d3Jvbmc6d3Jvbmc=", "Bearer x"])
async def test_wrong_or_missing_credentials_are_401(gateway: Gateway, auth: str | None) -> None:
    before = await loaded(gateway)
    status, _ = await gateway.jit(jit_body("unauth"), auth=auth)
    assert status == 401
    assert await gateway.journal_count() == before


async def test_a_funded_account_shows_its_currency_before_any_swipe(gateway: Gateway) -> None:
    await loaded(gateway)

    _, report = await gateway.admin("GET", "/admin/reconciliation")

    (account,) = report["accounts"]
    assert (account["currency"], account["posted_minor"]) == ("USD", 5_000)
    assert report["mismatches"] == 0


async def test_same_token_three_times_one_effect(gateway: Gateway) -> None:
    await loaded(gateway)
    body = jit_body("dup-1", amount="10.00")

    concurrent = await asyncio.gather(gateway.jit(body), gateway.jit(body))
    later = await gateway.jit(body)

    assert {concurrent[0], concurrent[1], later} == {concurrent[0]}
    assert concurrent[0][0] == 200
    assert await gateway.journal_count("dup-1") == 1
    _, report = await gateway.admin("GET", "/admin/reconciliation")
    (account,) = report["accounts"]
    assert (account["posted_minor"], account["held_minor"]) == (5_000, 1_000)
    assert report["mismatches"] == 0


async def test_200_concurrent_authorizations_money_for_50(gateway: Gateway) -> None:
    await loaded(gateway, balance="50.00")
    bodies = [jit_body(f"race-{n}", amount="1.00") for n in range(200)]

    answers = await asyncio.gather(*(gateway.jit(body) for body in bodies))

    statuses = [status for status, _ in answers]
    assert statuses.count(200) == 50
    assert statuses.count(402) == 150
    reasons = {
        orjson.loads(body)["jit_funding"].get("decline_reason") for s, body in answers if s == 402
    }
    assert reasons == {"INSUFFICIENT_FUNDS"}
    _, report = await gateway.admin("GET", "/admin/reconciliation")
    assert report["mismatches"] == 0
    assert report["accounts"][0]["held_minor"] == 5_000


async def test_one_decision_line_without_card_data(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    await loaded(gateway)
    caplog.set_level(logging.INFO)
    await gateway.jit(jit_body("logged-1", amount="3.00"))
    lines = [r for r in caplog.records if r.getMessage() == "decision"]
    assert len(lines) == 1
    fields = lines[0].fields  # type: ignore[attr-defined]
    expected = {"token", "method", "outcome", "reason", "status", "latency_us", "shard"}
    assert set(fields) == expected
    assert fields["token"] == "logged-1" and fields["outcome"] == "approved"
    assert fields["latency_us"] > 0


async def test_health_and_ready(gateway: Gateway) -> None:
    async with gateway.session.get(f"{gateway.url}/health") as response:
        assert response.status == 200
    async with gateway.session.get(f"{gateway.url}/ready") as response:
        ready = orjson.loads(await response.read())
        assert response.status == 200
    assert ready["ready"] is True
    assert ready["checks"]["journal"]["ok"] is True
    assert ready["checks"]["journal"]["latency_ms"] >= 0
    assert ready["checks"]["recovery"]["ok"] is True


async def test_bad_program_rejected_whole(gateway: Gateway) -> None:
    bad = program()
    bad["cards"].append({"token": "c9", "user_token": "nobody", "card_product_token": "p1"})
    bad["gpaorders"][0]["amount"] = "1.234"
    before = await gateway.journal_count()

    status, answer = await gateway.admin("POST", "/admin/program", bad)

    assert status == 400
    paths = {problem["path"] for problem in answer["problems"]}
    assert any(path.startswith("cards[1]") for path in paths), paths
    assert any(path.startswith("gpaorders[0]") for path in paths), paths
    assert await gateway.journal_count() == before


async def test_basic_scheme_name_is_case_insensitive(gateway: Gateway) -> None:
    from tests.gateway.conftest import AUTH

    await loaded(gateway)
    status, _ = await gateway.jit(jit_body("lower-basic"), auth="basic" + AUTH[len("Basic") :])
    assert status == 200
    status, _ = await gateway.jit(jit_body("wrong-case-secret"), auth=AUTH.lower())
    assert status == 401


async def test_nul_in_merchant_name_is_400_and_commits_go_on(gateway: Gateway) -> None:
    # PostgreSQL text cannot hold NUL: one such entry once stalled every commit behind it.
    before = await loaded(gateway)
    poisoned = jit_body("nul-name").replace(b"Corner Grocer", b"Caf\\u0000e")
    status, answer = await gateway.jit(poisoned)
    assert (status, orjson.loads(answer)["field"]) == (400, "body")
    assert await gateway.journal_count() == before

    status, _ = await gateway.jit(jit_body("after-nul"))
    assert status == 200
    assert await gateway.journal_count("after-nul") == 1


async def test_second_server_on_the_same_journal_refuses_to_start(
    gateway: Gateway, session: Any
) -> None:
    from pyjit.lease import LeaseTaken
    from tests.gateway.conftest import gateway_config, start_gateway

    await loaded(gateway)
    with pytest.raises(LeaseTaken):
        await start_gateway(gateway_config(gateway.database_url), session)
    status, _ = await gateway.jit(jit_body("still-the-writer"))
    assert status == 200
    assert await gateway.journal_count("still-the-writer") == 1


# Advisory locks are per database, and other tests' servers hold the same key in theirs.
THIS_DATABASE = " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
LEASE_HOLDER = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND ((classid::bigint << 32) | objid::bigint) = $1" + THIS_DATABASE
)


WAITING_FOR_LEASE = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    " AND ((classid::bigint << 32) | objid::bigint) = $1" + THIS_DATABASE
)


async def lease_backend(gateway: Gateway) -> tuple[Any, int]:
    """A connection of the test's own, and the backend pid that holds the writer lease."""
    import asyncpg

    from pyjit.lease import JOURNAL_WRITER_LOCK

    connection = await asyncpg.connect(gateway.database_url)
    pid = await connection.fetchval(LEASE_HOLDER, JOURNAL_WRITER_LOCK)
    assert pid is not None
    return connection, pid


async def test_lease_is_taken_again_when_its_connection_drops(gateway: Gateway) -> None:
    from pyjit.lease import JOURNAL_WRITER_LOCK

    await loaded(gateway)
    connection, pid = await lease_backend(gateway)
    try:
        await connection.execute("SELECT pg_terminate_backend($1)", pid)
        holder = pid
        for _ in range(100):
            await asyncio.sleep(0.1)
            holder = await connection.fetchval(LEASE_HOLDER, JOURNAL_WRITER_LOCK)
            if holder not in (None, pid):
                break
        assert holder not in (None, pid)
        assert not gateway.task.done()
        status, _ = await gateway.jit(jit_body("after-lease-drop"))
        assert status == 200
    finally:
        await connection.close()


async def test_losing_the_lease_to_another_process_stops_the_server(gateway: Gateway) -> None:
    from pyjit.lease import JOURNAL_WRITER_LOCK

    connection, pid = await lease_backend(gateway)
    import asyncpg

    thief = await asyncpg.connect(gateway.database_url)
    try:
        # Queued behind the server's session, the thief is granted the lock the moment that
        # session ends, before the server's next attempt to take it again.
        stolen = asyncio.create_task(
            thief.execute("SELECT pg_advisory_lock($1)", JOURNAL_WRITER_LOCK)
        )
        for _ in range(1000):
            if await connection.fetchval(WAITING_FOR_LEASE, JOURNAL_WRITER_LOCK):
                break
            await asyncio.sleep(0.01)
        await connection.execute("SELECT pg_terminate_backend($1)", pid)
        await asyncio.wait_for(stolen, 10)
        await asyncio.wait_for(gateway.task, 30)
    finally:
        await thief.close()
        await connection.close()
