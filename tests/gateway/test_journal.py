"""Proves the journal's storage side without the engine: migrations apply once and are
recorded; the writer group-commits everything queued during a commit into one batch and the
projector then brings the accounts, holds and transactions read models up to date; one
projection folds a void or an expiry in the same batch as what it undoes and moves the
watermark with the rows; a batch sent twice is refused whole by the journal's key; the
writer, retrying after an ambiguous commit, drops what did commit and sends only the rest,
yet hands all of it to the projector; and a projector started after a crash projects
exactly the entries beyond the watermark.

Entries are written by hand in the format of docs/journal.md."""

import asyncio

import asyncpg
import orjson
import pytest

from pyjit import migrations
from pyjit._engine import Engine
from pyjit.journal import JournalWriter
from pyjit.projections import (
    JOURNAL_APPEND,
    PROJECT,
    journal_arguments,
    journal_row,
    projection_arguments,
)
from pyjit.projector import Projector


def entry(seq: int, **fields: object) -> tuple[int, bytes]:
    return seq, orjson.dumps(
        {"v": 1, "seq": seq, "at_ms": 1_700_000_000_000, "effects": [], **fields}
    )


def funding(seq: int, account: str, amount: int) -> tuple[int, bytes]:
    return entry(
        seq,
        kind="program",
        object="gpaorder",
        token=f"fund-{account}",
        account=account,
        currency="USD",
        posted_delta_minor=amount,
        held_delta_minor=0,
        balance={"posted_minor": amount, "held_minor": 0, "credit_line_minor": 0},
    )


def authorization(
    seq: int, token: str, account: str, amount: int, posted: int, held: int
) -> tuple[int, bytes]:
    return entry(
        seq,
        kind="decision",
        token=token,
        method="pgfs.authorization",
        card="c1",
        account=account,
        currency="USD",
        amount_minor=amount,
        status=200,
        approved=True,
        posted_delta_minor=0,
        held_delta_minor=amount,
        balance={"posted_minor": posted, "held_minor": held, "credit_line_minor": 0},
        hold={
            "token": token,
            "amount_minor": amount,
            "state": "OPEN",
            "expires_at_ms": 1_700_600_000_000,
        },
        merchant={"mid": "m1", "mcc": "5411", "name": "Grocer"},
    )


@pytest.fixture
async def pool(database_url: str) -> asyncpg.Pool:
    created = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert created is not None
    async with created.acquire() as connection:
        await migrations.migrate(connection)
    yield created
    await created.close()


async def test_migrations_apply_once(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        first = await migrations.migrate(connection)
        second = await migrations.migrate(connection)
        versions = await connection.fetch("SELECT version FROM schema_migrations")
    finally:
        await connection.close()
    assert [m.version for m in first] == [m.version for m in migrations.available()]
    assert second == []
    assert len(versions) == len(first)


async def append(connection: asyncpg.Connection, batch: list[tuple[int, bytes]]) -> None:
    await connection.execute(
        JOURNAL_APPEND, *journal_arguments([journal_row(seq, data) for seq, data in batch])
    )


async def test_group_commit_batches_what_queued_during_a_commit(pool: asyncpg.Pool) -> None:
    projector = Projector(pool)
    writer = JournalWriter(pool, projector)
    task = asyncio.gather(writer.run(), projector.run())
    try:
        first = writer.submit_raw(*funding(1, "acct", 10_000))
        # Submitted in the same loop turn: these ride in the first or second commit together.
        futures = [
            writer.submit_raw(
                *authorization(seq, f"auth{seq}", "acct", 100, 10_000, 100 * (seq - 1))
            )
            for seq in range(2, 52)
        ]
        await asyncio.gather(first, *futures)
        await asyncio.wait_for(projector.wait_for(51), 10)
    finally:
        task.cancel()
    assert writer.committed_seq == 51
    assert writer.stats.entries == 51
    assert writer.stats.batches <= 2
    async with pool.acquire() as connection:
        account = await connection.fetchrow("SELECT * FROM accounts WHERE account_token='acct'")
        holds = await connection.fetchval("SELECT count(*) FROM holds WHERE state='OPEN'")
        transactions = await connection.fetchval("SELECT count(*) FROM transactions")
    assert (account["posted_minor"], account["held_minor"]) == (10_000, 5_000)
    assert holds == 50
    assert transactions == 50


async def test_a_future_resolves_only_when_all_its_entries_are_committed(
    pool: asyncpg.Pool,
) -> None:
    projector = Projector(pool)
    writer = JournalWriter(pool, projector, batch_max_entries=3)
    futures = [writer.submit_raw(*funding(1, "acct", 10_000))]
    futures += [
        writer.submit_raw(*authorization(seq, f"auth{seq}", "acct", 100, 10_000, 0))
        for seq in range(2, 11)
    ]
    seen: dict[int, int] = {}
    for index, future in enumerate(futures):
        # The journal's last committed seq at the moment this entry was acknowledged.
        future.add_done_callback(
            lambda _, index=index: seen.setdefault(index, writer.committed_seq)
        )

    task = asyncio.gather(writer.run(), projector.run())
    try:
        await asyncio.wait_for(asyncio.gather(*futures), 10)
    finally:
        task.cancel()

    # More was queued than one batch holds: no entry may be acknowledged before its batch.
    assert all(seen[index] >= index + 1 for index in range(10)), seen
    async with pool.acquire() as connection:
        assert await connection.fetchval("SELECT count(*) FROM journal") == 10
    assert writer.stats.batches >= 4


async def test_void_and_expiry_in_the_same_batch(pool: asyncpg.Pool) -> None:
    batch = [
        funding(1, "acct", 1_000),
        authorization(2, "a1", "acct", 300, 1_000, 300),
        entry(
            3,
            kind="void",
            token="a1",
            voids=2,
            account="acct",
            currency="USD",
            status=402,
            approved=False,
            decline={"reason": "INSUFFICIENT_FUNDS"},
            posted_delta_minor=0,
            held_delta_minor=-300,
            balance={"posted_minor": 1_000, "held_minor": 0, "credit_line_minor": 0},
            hold={"token": "a1", "amount_minor": 300, "state": "REVERSED"},
        ),
        authorization(4, "a2", "acct", 200, 1_000, 200),
        entry(
            5,
            kind="expiry",
            token="expiry:5",
            holds=[{"token": "a2", "account": "acct", "amount_minor": 200}],
            accounts=[
                {
                    "account": "acct",
                    "held_delta_minor": -200,
                    "balance": {"posted_minor": 1_000, "held_minor": 0, "credit_line_minor": 0},
                }
            ],
        ),
    ]
    async with pool.acquire() as connection:
        await append(connection, batch)
        with pytest.raises(asyncpg.UniqueViolationError):
            await append(connection, batch)
        arguments = projection_arguments([s for s, _ in batch], [d for _, d in batch])
        await connection.execute(PROJECT, *arguments)
        projected_seq = await connection.fetchval("SELECT projected_seq FROM projection_state")
        voided = await connection.fetchrow("SELECT * FROM transactions WHERE token='a1'")
        holds = dict(await connection.fetch("SELECT hold_token, state FROM holds"))
        account = await connection.fetchrow("SELECT * FROM accounts")
        sums = await connection.fetchrow(
            "SELECT sum(posted_delta_minor) AS posted, sum(held_delta_minor) AS held "
            "FROM journal WHERE account_token='acct'"
        )
    assert projected_seq == 5
    assert (voided["status"], voided["approved"], voided["voided_by_seq"]) == (402, False, 3)
    assert holds == {"a1": "REVERSED", "a2": "EXPIRED"}
    assert (account["posted_minor"], account["held_minor"]) == (1_000, 0)
    # The expiry's delta lives in its `accounts` array, not in the single-account columns.
    assert (sums["posted"], sums["held"]) == (1_000, 200)


async def test_retry_after_ambiguous_commit_sends_only_the_rest(pool: asyncpg.Pool) -> None:
    first = [funding(1, "acct", 1_000), authorization(2, "a1", "acct", 100, 1_000, 100)]
    async with pool.acquire() as connection:
        # The first attempt committed, but the writer never heard back.
        await append(connection, first[:1])
    projector = Projector(pool)
    writer = JournalWriter(pool, projector, attempt_timeout_s=1.0)
    failing = writer._commit
    attempts = 0

    async def first_attempt_fails(batch: list[tuple[int, ...]]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise OSError("connection lost after the commit")
        await failing(batch)  # type: ignore[arg-type]

    writer._commit = first_attempt_fails  # type: ignore[method-assign,assignment]
    futures = [writer.submit_raw(seq, data) for seq, data in first]
    task = asyncio.gather(writer.run(), projector.run())
    try:
        await asyncio.wait_for(asyncio.gather(*futures), 10)
        await asyncio.wait_for(projector.wait_for(2), 10)
    finally:
        task.cancel()
    assert writer.stats.entries == 1
    async with pool.acquire() as connection:
        account = await connection.fetchrow("SELECT * FROM accounts")
        count = await connection.fetchval("SELECT count(*) FROM journal")
    assert (account["posted_minor"], account["held_minor"], count) == (1_000, 100, 2)


async def test_projector_resumes_at_the_watermark(pool: asyncpg.Pool) -> None:
    batch = [funding(1, "acct", 1_000), authorization(2, "a1", "acct", 100, 1_000, 100)]
    async with pool.acquire() as connection:
        await append(connection, batch)
        # Entry 1 was projected before the crash, entry 2 was not.
        await connection.execute(PROJECT, *projection_arguments([1], [batch[0][1]]))
    projector = Projector(pool)
    await projector.catch_up()
    assert (projector.projected_seq, projector.backlog) == (1, 1)
    task = asyncio.create_task(projector.run())
    try:
        await asyncio.wait_for(projector.wait_for(2), 10)
    finally:
        task.cancel()
    async with pool.acquire() as connection:
        account = await connection.fetchrow("SELECT * FROM accounts")
        watermark = await connection.fetchval("SELECT projected_seq FROM projection_state")
    assert (account["posted_minor"], account["held_minor"], watermark) == (1_000, 100, 2)


async def test_another_writers_entry_at_our_seq_fences_the_writer(pool: asyncpg.Pool) -> None:
    # Another process wrote seq 1 first; ours must not pass its own entry off as committed.
    async with pool.acquire() as connection:
        await append(connection, [funding(1, "theirs", 500)])
    projector = Projector(pool)
    writer = JournalWriter(pool, projector, attempt_timeout_s=1.0)
    fenced = asyncio.Event()
    ours = writer.submit_raw(*funding(1, "ours", 1_000))

    await asyncio.wait_for(writer.run(on_fenced=fenced.set), 10)

    assert fenced.is_set() and not ours.done() and not writer.healthy
    async with pool.acquire() as connection:
        rows = await connection.fetch("SELECT data FROM journal")
    assert [orjson.loads(row["data"])["account"] for row in rows] == ["theirs"]


async def test_a_program_file_is_committed_in_one_transaction(pool: asyncpg.Pool) -> None:
    engine = Engine()
    users = [{"token": f"u{index}"} for index in range(10)]
    entries = engine.load(orjson.dumps({"users": users}), 1_710_331_200_000)
    projector = Projector(pool)
    writer = JournalWriter(pool, projector, batch_max_entries=3)

    # A crash between two commits would leave part of the file in the journal, live after
    # recovery: the whole file must ride in one commit, larger than a batch though it is.
    loaded = writer.submit_many(entries)
    single = writer.submit_raw(*funding(len(entries) + 1, "u0", 100))
    assert loaded is not None
    task = asyncio.gather(writer.run(), projector.run())
    try:
        await asyncio.wait_for(asyncio.gather(loaded, single), 10)
    finally:
        task.cancel()

    assert len(entries) == 10
    assert writer.stats.batches == 2
    assert writer.stats.largest_batch == 10
    assert writer.committed_seq == 11
