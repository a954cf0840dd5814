"""The baseline: a deliberately ordinary JIT gateway, the usual first design.

Every swipe is one PostgreSQL transaction that locks the account row with SELECT ... FOR UPDATE,
checks the balance, writes the hold and the decision, and commits before answering. There is
no group commit, no in-memory state and no spend control beyond funds: this is what pyjit is
measured against in the same run, under the same load. It is not part of the product.

Usage: python bench/baseline.py --dsn postgresql://... --addr 127.0.0.1:8081 [--program FILE]
A program can also be posted to `/admin/program`, as `pyjit replay` does.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hmac
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiohttp import web

SCHEMA = """
CREATE TABLE IF NOT EXISTS baseline_accounts (
    token text PRIMARY KEY,
    posted_minor bigint NOT NULL DEFAULT 0,
    held_minor bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS baseline_cards (
    token text PRIMARY KEY,
    account_token text NOT NULL REFERENCES baseline_accounts (token)
);
CREATE TABLE IF NOT EXISTS baseline_holds (
    token text PRIMARY KEY,
    account_token text NOT NULL,
    amount_minor bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS baseline_decisions (
    token text PRIMARY KEY,
    status int NOT NULL,
    body bytea NOT NULL
);
"""

INFORMATIVE = ("capture", "reversal", "refund", "force_capture", "advice")

APP_POOL = web.AppKey("pool", asyncpg.Pool)
APP_AUTH = web.AppKey("auth", str)


def minor_units(amount: Any) -> int:
    """USD minor units from the processor's decimal amount, exactly."""
    return int(Decimal(str(amount)).scaleb(2).to_integral_exact())


def answer(funding: dict[str, Any], status: int, reason: str | None) -> web.Response:
    body: dict[str, Any] = {
        "token": funding["token"],
        "method": funding["method"],
        "user_token": funding.get("user_token"),
        "amount": str(funding["amount"]),
    }
    if reason is not None:
        body["decline_reason"] = reason
    return web.Response(
        status=status, body=orjson.dumps({"jit_funding": body}), content_type="application/json"
    )


async def decide(conn: asyncpg.Connection, message: dict[str, Any]) -> tuple[int, str | None]:
    """One swipe inside one transaction; the account row stays locked until the commit."""
    funding = message["gpa_order"]["jit_funding"]
    method: str = funding["method"]
    amount = minor_units(funding["amount"])
    chain = funding.get("original_jit_funding_token") or funding["token"]
    account = await conn.fetchval(
        "SELECT a.token FROM baseline_accounts a JOIN baseline_cards c ON c.account_token = a.token"
        " WHERE c.token = $1 FOR UPDATE OF a",
        message["card_token"],
    )
    if account is None:
        return 402, "INVALID_CARD"

    if any(word in method for word in INFORMATIVE):
        held = await conn.fetchval(
            "DELETE FROM baseline_holds WHERE token = $1 RETURNING amount_minor", chain
        )
        posted = -amount if "capture" in method else (amount if "refund" in method else 0)
        await conn.execute(
            "UPDATE baseline_accounts SET posted_minor = posted_minor + $2,"
            " held_minor = held_minor - $3 WHERE token = $1",
            account,
            posted,
            held or 0,
        )
        return 200, None

    posted, held = await conn.fetchrow(
        "SELECT posted_minor, held_minor FROM baseline_accounts WHERE token = $1", account
    )
    if posted - held < amount:
        return 402, "INSUFFICIENT_FUNDS"
    await conn.execute(
        "INSERT INTO baseline_holds (token, account_token, amount_minor) VALUES ($1, $2, $3)"
        " ON CONFLICT (token) DO UPDATE SET amount_minor = baseline_holds.amount_minor + $3",
        chain,
        account,
        amount,
    )
    await conn.execute(
        "UPDATE baseline_accounts SET held_minor = held_minor + $2 WHERE token = $1",
        account,
        amount,
    )
    return 200, None


async def handle_jit(request: web.Request) -> web.Response:
    expected = request.app[APP_AUTH]
    if not hmac.compare_digest(request.headers.get("Authorization", ""), expected):
        return web.json_response({"error": "unauthorized"}, status=401)

    message = orjson.loads(await request.read())
    funding = message["gpa_order"]["jit_funding"]

    async with request.app[APP_POOL].acquire() as conn, conn.transaction():
        earlier = await conn.fetchrow(
            "SELECT status, body FROM baseline_decisions WHERE token = $1", funding["token"]
        )
        if earlier is not None:
            return web.Response(
                status=earlier["status"], body=earlier["body"], content_type="application/json"
            )
        status, reason = await decide(conn, message)
        response = answer(funding, status, reason)
        assert isinstance(response.body, bytes)
        await conn.execute(
            "INSERT INTO baseline_decisions (token, status, body) VALUES ($1, $2, $3)",
            funding["token"],
            status,
            response.body,
        )
    return response


async def load_program(pool: asyncpg.Pool, program: dict[str, Any]) -> None:
    """Accounts, cards and funding from the subset of a program file the baseline knows."""
    owners: dict[str, str] = {}
    for business in program.get("businesses", []):
        owners[business["token"]] = business["token"]
    for user in program.get("users", []):
        parent = user.get("parent_token")
        shares = user.get("uses_parent_account") and parent
        owners[user["token"]] = owners.get(parent, parent) if shares else user["token"]
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            "INSERT INTO baseline_accounts (token) VALUES ($1) ON CONFLICT DO NOTHING",
            [(token,) for token in sorted(set(owners.values()))],
        )
        await conn.executemany(
            "INSERT INTO baseline_cards (token, account_token) VALUES ($1, $2)"
            " ON CONFLICT DO NOTHING",
            [(card["token"], owners[card["user_token"]]) for card in program.get("cards", [])],
        )
        for order in program.get("gpaorders", []):
            holder = order.get("user_token") or order["business_token"]
            await conn.execute(
                "UPDATE baseline_accounts SET posted_minor = posted_minor + $2 WHERE token = $1",
                owners[holder],
                minor_units(order["amount"]),
            )


async def handle_program(request: web.Request) -> web.Response:
    """`POST /admin/program`, so `pyjit replay` loads the same program into both gateways."""
    if not hmac.compare_digest(request.headers.get("Authorization", ""), request.app[APP_AUTH]):
        return web.json_response({"error": "unauthorized"}, status=401)
    await load_program(request.app[APP_POOL], orjson.loads(await request.read()))
    return web.json_response({"entries": 0, "last_seq": 0})


async def make_app(dsn: str, username: str, password: str) -> web.Application:
    pool = await asyncpg.create_pool(dsn, min_size=4, max_size=16)
    async with pool.acquire() as conn:
        await conn.execute(SCHEMA)
    # Program files are megabytes; JIT bodies are small but share the limit.
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[APP_POOL] = pool
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
    app[APP_AUTH] = f"Basic {credentials}"
    app.router.add_post("/jit", handle_jit)
    app.router.add_post("/admin/program", handle_program)

    async def close_pool(app: web.Application) -> None:
        await app[APP_POOL].close()

    app.on_cleanup.append(close_pool)
    return app


async def serve(args: argparse.Namespace, program: dict[str, Any] | None) -> None:
    app = await make_app(args.dsn, args.username, args.password)
    if program is not None:
        await load_program(app[APP_POOL], program)
    host, port = args.addr.rsplit(":", 1)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, int(port)).start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--addr", default="127.0.0.1:8081")
    parser.add_argument("--username", default="processor")
    parser.add_argument("--password", required=True)
    parser.add_argument("--program", help="a program file to load before serving")
    args = parser.parse_args()
    program = orjson.loads(Path(args.program).read_bytes()) if args.program else None
    asyncio.run(serve(args, program))


if __name__ == "__main__":
    main()
