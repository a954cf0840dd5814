"""Shared fixtures: a fresh PostgreSQL database per test.

Tests run against the machine's PostgreSQL on 127.0.0.1:5432 (trust auth). Each test gets
its own database with a random name, dropped afterwards, so runs never see each other's
data. Where that server is unreachable (a fresh machine), an embedded `pgserver` instance
in a temporary directory stands in for it.
"""

import asyncio
import os
import secrets
import tempfile
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

SERVER_URLS = (
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "postgresql://127.0.0.1:5432/postgres",
)


async def _reachable(url: str) -> bool:
    try:
        connection = await asyncpg.connect(url, timeout=2)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A superuser URL of a PostgreSQL server that tests may create databases on."""
    configured = os.environ.get("PYJIT_TEST_POSTGRES_URL")
    candidates = (configured,) if configured else SERVER_URLS
    for url in candidates:
        if asyncio.run(_reachable(url)):
            yield url
            return
    with tempfile.TemporaryDirectory(prefix="pyjit-test-pg-") as directory:
        with warnings.catch_warnings():
            # platformdirs warns that XDG_RUNTIME_DIR is unset, as it is under CI.
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server

            server = get_server(Path(directory), cleanup_mode="stop")
        yield server.get_uri("postgres")
        server.cleanup()


@pytest.fixture
async def database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """The URL of a new, empty database, dropped after the test."""
    async for url in fresh_database(postgres_admin_url):
        yield url


async def fresh_database(postgres_admin_url: str) -> AsyncIterator[str]:
    """Create a database with a random name, yield its URL, drop it (for tests that need
    more than one: `async for url in fresh_database(admin_url)`)."""
    name = f"pyjit_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(postgres_admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = postgres_admin_url.partition("?")
    query = postgres_admin_url[len(base) :]
    yield base.rsplit("/", 1)[0] + f"/{name}" + query
    admin = await asyncpg.connect(postgres_admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
