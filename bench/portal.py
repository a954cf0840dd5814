"""Server time of the portal's busiest pages for a company with 1,000 cards and 100,000
transactions (and another company of the same size beside it, so every page must find its
own rows among 200,000).

The portal runs in this process on a fresh database of the machine's PostgreSQL
(127.0.0.1:5432) and the machine's Redis (127.0.0.1:6379, a key prefix of its own); a
middleware times each request from arrival to the last byte written, into an HdrHistogram.
Pages: the company dashboard (/company), the first page of its transaction list, a merchant
search, the list filtered by employee, and an employee's own dashboard (/me).

Baseline in the same run: the same pages after dropping the portal's two transaction
indexes (migration 0004), which is what they would cost without them.

Usage: .venv/bin/python bench/portal.py [--requests 300]
"""

import argparse
import asyncio
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pyotp
from aiohttp import web
from hdrh.histogram import HdrHistogram

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from portal import users  # noqa: E402
from portal.app import build_app, make_portal  # noqa: E402
from portal.passwords import hash_password  # noqa: E402
from portal.roles import Role  # noqa: E402
from portal.sessions import RedisHandle  # noqa: E402
from portal.settings import PortalSettings  # noqa: E402
from pyjit import migrations  # noqa: E402
from pyjit.clock import SystemClock, SystemIds  # noqa: E402

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
CARDS = 1_000
EMPLOYEES = 200
TRANSACTIONS = 100_000
DAYS = 90
MERCHANTS = [
    ("Corner Grocer", "5411"),
    ("Blue Bottle", "5814"),
    ("Shell", "5541"),
    ("Delta Air", "3058"),
    ("Hilton", "7011"),
    ("Office Depot", "5943"),
    ("AWS", "7372"),
    ("Uber", "4121"),
]
PASSWORD = "bench password, long enough"


class NoGateway:
    async def load(self, document: dict[str, Any]) -> None:
        raise AssertionError("the bench only reads")


async def seed_company(pool: asyncpg.Pool, name: str, now_ms: int) -> dict[str, Any]:
    token = f"co-{secrets.token_hex(6)}"
    company_id = await pool.fetchval(
        "INSERT INTO portal_companies (business_token, name) VALUES ($1, $2) RETURNING id",
        token,
        name,
    )
    emails = [f"e{n}.{token}@bench.test" for n in range(EMPLOYEES)]
    await pool.executemany(
        "INSERT INTO portal_users (email, display_name, role, company_id, holder_token) "
        "VALUES ($1, $2, 'employee', $3, $4)",
        [(email, f"Employee {n}", company_id, f"h-{token}-{n}") for n, email in enumerate(emails)],
    )
    people = [
        r["id"]
        for r in await pool.fetch(
            "SELECT id FROM portal_users WHERE company_id = $1 ORDER BY id", company_id
        )
    ]
    cards = [f"card-{token}-{n}" for n in range(CARDS)]
    await pool.executemany(
        "INSERT INTO portal_cards (card_token, user_id, company_id, last_four, expiration) "
        "VALUES ($1, $2, $3, $4, '1230')",
        [
            (card, people[n % EMPLOYEES], company_id, f"{n % 10000:04d}")
            for n, card in enumerate(cards)
        ],
    )
    await pool.execute(
        "INSERT INTO accounts (account_token, currency, posted_minor) "
        "VALUES ($1, 'USD', 500000000)",
        token,
    )
    await _transactions(pool, token, cards, now_ms)
    return {"token": token, "id": company_id, "person": people[0]}


async def _transactions(pool: asyncpg.Pool, account: str, cards: list[str], now_ms: int) -> None:
    rows = []
    for n in range(TRANSACTIONS):
        merchant, mcc = MERCHANTS[n % len(MERCHANTS)]
        approved = n % 20 != 0
        rows.append(
            (
                f"{account}-t{n}",
                n,
                cards[(n * 7919) % CARDS],
                account,
                "pgfs.authorization",
                100 + (n * 37) % 50_000,
                "USD",
                200 if approved else 402,
                approved,
                None if approved else "INSUFFICIENT_FUNDS",
                orjson.dumps({"name": merchant, "mcc": mcc, "country_code": "USA"}).decode(),
                now_ms - (n * DAYS * 86_400_000) // TRANSACTIONS,
            )
        )
    await pool.copy_records_to_table(
        "transactions",
        records=rows,
        columns=[
            "token",
            "seq",
            "card_token",
            "account_token",
            "method",
            "amount_minor",
            "currency",
            "status",
            "approved",
            "decline_reason",
            "merchant",
            "at_ms",
        ],
    )
    # Each approved authorization has its hold: cleared after a week, open before.
    week_ago = now_ms - 7 * 86_400_000
    holds = [
        (row[0], account, row[5], "CLEARED" if row[11] < week_ago else "OPEN", row[1])
        for row in rows
        if row[8]
    ]
    await pool.copy_records_to_table(
        "holds",
        records=holds,
        columns=["hold_token", "account_token", "amount_minor", "state", "last_seq"],
    )


PROJECTED_ROWS = 40_000
PROJECTED_BATCH = 1_000
PROJECT = """
INSERT INTO transactions (token, seq, card_token, account_token, method, amount_minor,
                          currency, status, approved, merchant, at_ms)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                     $6::bigint[], $7::text[], $8::int[], $9::bool[], $10::jsonb[],
                     $11::bigint[])
"""


async def projection_cost(pool: asyncpg.Pool, now_ms: int) -> None:
    """What the portal's three indexes cost the projector: rows/s of batched inserts shaped
    like its own (unnest, 1,000 a batch), without the indexes and then with them."""
    rates = {}
    await pool.execute("DROP INDEX transactions_at_brin")
    for phase, label in enumerate(("without the portal's indexes", "with them")):
        if label == "with them":
            await pool.execute(
                "CREATE INDEX transactions_account_at ON transactions (account_token, at_ms);"
                "CREATE INDEX transactions_card_at ON transactions (card_token, at_ms);"
                "CREATE INDEX transactions_at_brin ON transactions USING brin (at_ms)"
            )
        started = time.perf_counter()
        for batch in range(PROJECTED_ROWS // PROJECTED_BATCH):
            base = batch * PROJECTED_BATCH
            tokens = [f"p{phase}-{base + n}" for n in range(PROJECTED_BATCH)]
            await pool.execute(
                PROJECT,
                tokens,
                list(range(base, base + PROJECTED_BATCH)),
                [f"card-{n % CARDS}" for n in range(PROJECTED_BATCH)],
                [f"acct-{n % 50}" for n in range(PROJECTED_BATCH)],
                ["pgfs.authorization"] * PROJECTED_BATCH,
                [500] * PROJECTED_BATCH,
                ["USD"] * PROJECTED_BATCH,
                [200] * PROJECTED_BATCH,
                [True] * PROJECTED_BATCH,
                ['{"name": "Shop", "mcc": "5411"}'] * PROJECTED_BATCH,
                [now_ms + n for n in range(base, base + PROJECTED_BATCH)],
            )
        rates[label] = PROJECTED_ROWS / (time.perf_counter() - started)
    print(f"\nprojection inserts, {PROJECTED_ROWS} rows in batches of {PROJECTED_BATCH}:")
    for label, rate in rates.items():
        print(f"  {label:<30}{rate:>10,.0f} rows/s")
    slower = rates["without the portal's indexes"] / rates["with them"]
    print(f"  cost of the indexes: {slower:.2f}x the time per row")


def timer(histograms: dict[str, HdrHistogram]) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def timed(request: web.Request, handler: Any) -> web.StreamResponse:
        started = time.perf_counter_ns()
        response: web.StreamResponse = await handler(request)
        label = request.headers.get("X-Bench-Page")
        if label:
            histograms[label].record_value(max(1, (time.perf_counter_ns() - started) // 1000))
        return response

    return timed


async def sign_in(session: aiohttp.ClientSession, url: str, email: str, secret: str | None) -> None:
    import re

    async with session.get(f"{url}/login") as answer:
        csrf = re.search(r'name="csrf" value="([^"]+)"', await answer.text()).group(1)  # type: ignore[union-attr]
    async with session.post(
        f"{url}/login", data={"csrf": csrf, "email": email, "password": PASSWORD}
    ) as answer:
        page = await answer.text()
    if secret is not None:
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        async with session.post(
            f"{url}/login/second-factor", data={"csrf": csrf, "code": pyotp.TOTP(secret).now()}
        ) as a:
            assert a.status == 200, a.status


async def measure(
    url: str, pages: dict[str, tuple[str, aiohttp.ClientSession]], requests: int
) -> None:
    """Request each page `requests` times, one at a time; the middleware records them."""
    for label, (path, session) in pages.items():
        for _ in range(20):  # warm the plan cache and the buffers
            async with session.get(url + path) as answer:
                await answer.read()
        for _ in range(requests):
            async with session.get(url + path, headers={"X-Bench-Page": label}) as answer:
                assert answer.status == 200, (label, answer.status)
                await answer.read()


def report(title: str, histograms: dict[str, HdrHistogram]) -> dict[str, dict[str, float]]:
    print(f"\n{title}")
    print(f"  {'page':<28}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    figures = {}
    for label, histogram in histograms.items():
        p50 = histogram.get_value_at_percentile(50) / 1000
        p99 = histogram.get_value_at_percentile(99) / 1000
        print(
            f"  {label:<28}{histogram.get_total_count():>6}{p50:>10.2f}{p99:>10.2f}"
            f"{histogram.get_max_value() / 1000:>10.2f}"
        )
        figures[label] = {"p50_ms": p50, "p99_ms": p99}
    return figures


async def run(requests: int) -> None:
    name = f"pyjit_bench_portal_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    database_url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        await _bench(database_url, requests)
    finally:
        admin = await asyncpg.connect(ADMIN_URL)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _bench(database_url: str, requests: int) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=10)
    async with pool.acquire() as connection:
        await migrations.migrate(connection)
    clock = SystemClock()
    started = time.perf_counter()
    company = await seed_company(pool, "Bench Co", clock.now_ms())
    await seed_company(pool, "Neighbour Co", clock.now_ms())
    await pool.execute("ANALYZE")
    print(
        f"seeded 2 companies x {CARDS} cards x {TRANSACTIONS} transactions "
        f"in {time.perf_counter() - started:.1f} s"
    )
    secret = await _people(pool, company)
    employee_email = await pool.fetchval(
        "SELECT email FROM portal_users WHERE id = $1", company["person"]
    )
    settings = PortalSettings(
        redis_url=REDIS_URL,
        key_prefix=f"bench:{secrets.token_hex(4)}:",
        jwt_secret=secrets.token_urlsafe(48),
        cookie_secure=False,
    )
    redis = RedisHandle(REDIS_URL)
    histograms: dict[str, HdrHistogram] = {}
    app = build_app(make_portal(pool, redis, NoGateway(), settings, clock, SystemIds()))
    app.middlewares.append(timer(histograms))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}"
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as boss,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as employee,
    ):
        await sign_in(boss, url, "boss@bench.test", secret)
        await sign_in(employee, url, employee_email, None)
        pages = {
            "company dashboard": ("/company", boss),
            "company transactions": ("/company/transactions", boss),
            "transactions, page 20": ("/company/transactions?page=20", boss),
            "transactions by employee": (
                f"/company/transactions?employee={company['person']}",
                boss,
            ),
            "merchant search": ("/company/transactions?q=hilton", boss),
            "employee dashboard (/me)": ("/me", employee),
        }
        with_indexes = await _round(url, pages, requests, histograms)
        figures = report("with the portal's indexes (server time)", with_indexes)
        await pool.execute("DROP INDEX transactions_account_at; DROP INDEX transactions_card_at")
        without = await _round(url, pages, max(requests // 10, 20), histograms)
        baseline = report("baseline: the same pages without them", without)
    print("\np99 ratio, baseline / with indexes:")
    for label in figures:
        ratio = baseline[label]["p99_ms"] / max(figures[label]["p99_ms"], 0.001)
        print(f"  {label:<28}{ratio:>8.1f}x")
    await projection_cost(pool, clock.now_ms())
    await runner.cleanup()
    client = redis.client
    keys = [key async for key in client.scan_iter(match=f"{settings.key_prefix}*")]
    if keys:
        await client.delete(*keys)
    await redis.close()
    await pool.close()


async def _people(pool: asyncpg.Pool, company: dict[str, Any]) -> str:
    """A company admin with a second factor and a password for one employee; the admin's
    TOTP secret."""
    secret = pyotp.random_base32()
    async with pool.acquire() as connection:
        await users.create_user(
            connection, "boss@bench.test", "Boss", Role.COMPANY_ADMIN, PASSWORD, company["id"]
        )
        await connection.execute(
            "UPDATE portal_users SET totp_secret = $1, totp_enabled = true, password_hash = $2 "
            "WHERE email = 'boss@bench.test'",
            secret,
            hash_password(PASSWORD),
        )
        await connection.execute(
            "UPDATE portal_users SET password_hash = $2 WHERE id = $1",
            company["person"],
            hash_password(PASSWORD),
        )
    return secret


async def _round(
    url: str,
    pages: dict[str, tuple[str, aiohttp.ClientSession]],
    requests: int,
    histograms: dict[str, HdrHistogram],
) -> dict[str, HdrHistogram]:
    histograms.clear()
    histograms.update({label: HdrHistogram(1, 60_000_000, 3) for label in pages})
    await measure(url, pages, requests)
    return dict(histograms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per page")
    args = parser.parse_args()
    asyncio.run(run(args.requests))


if __name__ == "__main__":
    main()
