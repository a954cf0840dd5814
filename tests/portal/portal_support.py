"""Helpers of the portal tests: `pyjit serve` in this event loop with the portal attached,
against a fresh database and its own Redis key prefix, a program loaded, and helpers that
seed companies, people and cards through the portal's own operations (which load program
documents into the running gateway over HTTP, as `--role portal` does)."""

import base64
import datetime as dt
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pyotp

USERNAME = "processor"
PASSWORD = "Test-Secret-Password-123!"
AUTH = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
REDIS_URL = os.environ.get("PYJIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
USER_PASSWORD = "correct horse battery staple"
PROGRAM = {"program": {"token": "portal-test", "currency_code": "USD"}}


def artifacts_dir() -> Path:
    """Where screenshots go: $PYJIT_ARTIFACTS, else test-artifacts/portal (gitignored)."""
    path = Path(
        os.environ.get("PYJIT_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts" / "portal")
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Running:
    url: str
    database_url: str
    prefix: str
    session: aiohttp.ClientSession
    pool: asyncpg.Pool
    redis_url: str

    async def jit(self, body: bytes) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json", "Authorization": AUTH}
        async with self.session.post(f"{self.url}/jit", data=body, headers=headers) as answer:
            return answer.status, orjson.loads(await answer.read())

    async def load(self, document: dict[str, Any]) -> None:
        async with self.session.post(
            f"{self.url}/admin/program",
            data=orjson.dumps(document),
            headers={"Authorization": AUTH},
        ) as answer:
            assert answer.status == 200, await answer.text()


def jit_body(
    token: str,
    card: str,
    user: str,
    amount: str,
    merchant: str = "Corner Grocer",
    mcc: str = "5411",
    country: str = "USA",
    method: str = "pgfs.authorization",
    original: str | None = None,
) -> bytes:
    funding: dict[str, Any] = {
        "token": token,
        "method": method,
        "user_token": user,
        "amount": amount,
    }
    if original is not None:
        funding["original_jit_funding_token"] = original
    return orjson.dumps(
        {
            "token": f"t-{token}",
            "type": "authorization",
            "state": "PENDING",
            "amount": amount,
            "currency_code": "USD",
            "card_token": card,
            "user_token": user,
            "created_time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "card_acceptor": {
                "mid": "m1",
                "mcc": mcc,
                "name": merchant,
                "city": "Austin",
                "country_code": country,
            },
            "gpa_order": {"jit_funding": funding},
        }
    )


class Seeder:
    """Seeds through the portal's operations, as the pages would."""

    def __init__(self, running: Running, portal: Any) -> None:
        self.running = running
        self.portal = portal

    async def user(
        self, email: str, role: str, company_id: int | None = None, totp: bool = False
    ) -> dict[str, Any]:
        from portal import users
        from portal.cards import new_holder_token
        from portal.roles import HOLDER_ROLES, Role

        holder = new_holder_token(self.portal) if Role(role) in HOLDER_ROLES else None
        async with self.running.pool.acquire() as connection:
            user_id = await users.create_user(
                connection,
                email,
                email.split("@")[0].title(),
                Role(role),
                USER_PASSWORD,
                company_id,
                holder,
            )
        secret = None
        if totp:
            secret = pyotp.random_base32()
            await self.running.pool.execute(
                "UPDATE portal_users SET totp_secret = $2, totp_enabled = true WHERE id = $1",
                user_id,
                secret,
            )
        row = await self.running.pool.fetchrow("SELECT * FROM portal_users WHERE id = $1", user_id)
        return {**dict(row), "totp": secret}

    async def company(self, name: str, funding_minor: int = 100_000) -> Any:
        from portal import documents, queries

        token = f"co-{secrets.token_hex(6)}"
        await self.portal.loader.load(documents.company(token, name, funding_minor, "USD"))
        company_id = await self.running.pool.fetchval(
            "INSERT INTO portal_companies (business_token, name) VALUES ($1, $2) RETURNING id",
            token,
            name,
        )
        return await queries.company(self.running.pool, company_id)

    async def card(self, holder: dict[str, Any], company: Any) -> str:
        from portal import cards, users

        viewer = await users.viewer(self.running.pool, holder["id"])
        assert viewer is not None
        return str(await cards.issue(self.portal, viewer, holder, company, "127.0.0.1"))


class Browser:
    """A signed-in HTTP client of the portal (aiohttp, cookies kept per client)."""

    def __init__(self, running: Running) -> None:
        self.running = running
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.session.close()

    def cookie(self) -> str | None:
        for cookie in self.session.cookie_jar:
            if cookie.key == "pyjit_portal":
                return cookie.value
        return None

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.running.url + path, allow_redirects=False) as answer:
            return answer.status, await answer.text()

    async def csrf(self, path: str = "/login") -> str:
        status, page = await self.get(path)
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found, f"no CSRF field on {path} ({status})"
        return found.group(1)

    async def post(self, path: str, form: dict[str, str]) -> tuple[int, str, str]:
        async with self.session.post(
            self.running.url + path, data=form, allow_redirects=False
        ) as answer:
            return answer.status, await answer.text(), answer.headers.get("Location", "")

    async def sign_in(self, user: dict[str, Any]) -> None:
        token = await self.csrf()
        status, _, location = await self.post(
            "/login", {"csrf": token, "email": user["email"], "password": USER_PASSWORD}
        )
        assert status == 303, status
        if location == "/login/second-factor":
            token = await self.csrf(location)
            code = pyotp.TOTP(user["totp"]).now()
            status, _, location = await self.post(location, {"csrf": token, "code": code})
            assert status == 303 and location == "/", (status, location)
