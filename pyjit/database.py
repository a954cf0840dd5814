"""Where the journal lives: the configured PostgreSQL, or an embedded one under PYJIT_HOME."""

import asyncio
import contextlib
import logging
import os
import urllib.parse
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import asyncpg
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from pyjit import migrations

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

log = logging.getLogger(__name__)

# The writer holds one connection; the others serve /ready, admin reads and snapshots.
POOL_SIZE = 4


@dataclass
class Database:
    """A PostgreSQL URL and, for the embedded server, how to let go of it."""

    url: str
    embedded: bool
    release: Callable[[], None]


def open_database(database_url: str | None, home: Path) -> Database:
    """Use `database_url`, or start (or join) the embedded server in `home`/pgdata."""
    if database_url:
        return Database(database_url, embedded=False, release=lambda: None)
    return start_embedded(home / "pgdata")


def start_embedded(pgdata: Path) -> Database:
    """Start the `pgserver` PostgreSQL on `pgdata`, creating it on first use.

    A process killed without cleanup leaves the server running; the next start joins it.
    """
    pgdata.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset, as it is under CI and in tests.
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import get_server

        server = get_server(pgdata.resolve(), cleanup_mode="stop")
    url: str = server.get_uri("postgres")
    log.info("embedded PostgreSQL ready in %s", pgdata)
    return Database(url, embedded=True, release=server.cleanup)


async def create_pool(url: str) -> asyncpg.Pool:
    """A small pool whose broken connections are replaced on the next acquire, so the
    gateway survives a PostgreSQL restart without one of its own."""
    pool = await asyncpg.create_pool(
        url,
        min_size=1,
        max_size=POOL_SIZE,
        command_timeout=30,
        max_inactive_connection_lifetime=60,
        # The journal and projection statements take up to 31 arrays; planning them afresh
        # for each batch (PostgreSQL's first custom plans) costs more than executing them.
        server_settings={"plan_cache_mode": "force_generic_plan"},
        ssl=_ssl_setting(url),
    )
    assert pool is not None
    return pool


class HeldConnection:
    """One pool connection that a long-running task (the journal writer, the projector) keeps
    between statements: handing it back after each batch would cost a reset round trip per
    batch. A statement that fails gives it back, so the pool replaces it if it broke."""

    def __init__(self, pool: asyncpg.Pool, timeout_s: float) -> None:
        self._pool = pool
        self._timeout_s = timeout_s
        self._held: PoolConnectionProxy[asyncpg.Record] | None = None

    async def execute(self, statement: str, *arguments: object) -> None:
        if self._held is None:
            self._held = await self._pool.acquire(timeout=self._timeout_s)
        try:
            await self._held.execute(statement, *arguments, timeout=self._timeout_s)
        except BaseException:
            await self.release()
            raise

    async def release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pool.release(held), self._timeout_s)


def _ssl_setting(url: str) -> bool | None:
    """No TLS to a loopback server unless the URL or PGSSLMODE asks for it: asyncpg's default
    ("prefer") encrypts every journal byte, a measurable share of the commit path's CPU,
    to protect traffic that never leaves the machine. None keeps asyncpg's default."""
    parts = urllib.parse.urlsplit(url)
    asked = "sslmode" in urllib.parse.parse_qs(parts.query) or "PGSSLMODE" in os.environ
    if parts.hostname in ("127.0.0.1", "::1", "localhost") and not asked:
        return False
    return None


class DatabaseUnavailable(RuntimeError):
    """The journal database cannot be used; the message names it (without its password) and
    says why, so an operator reads the cause instead of a driver's traceback."""


def shown_url(url: str) -> str:
    """`url` without its password."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


async def wait_for_database(url: str, attempts: int = 50, delay_s: float = 0.2) -> None:
    """Wait until PostgreSQL accepts a connection, as it may still be starting; a refusal
    that waiting cannot cure (no such database, wrong password, a malformed URL) ends at
    once. Either way the failure is a `DatabaseUnavailable`."""
    starting = (TimeoutError, OSError, asyncpg.CannotConnectNowError)
    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_fixed(delay_s),
        retry=retry_if_exception_type(starting),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                connection = await asyncpg.connect(url, timeout=5, ssl=_ssl_setting(url))
                await connection.close()
    except (*starting, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as error:
        reason = str(error) or type(error).__name__
        raise DatabaseUnavailable(f"cannot use the database {shown_url(url)}: {reason}") from error


@contextlib.asynccontextmanager
async def migrated_pool(
    database_url: str | None, home: Path
) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    """The configured (or embedded) database, up and migrated, and a pool on it: what every
    serving role starts from. The pool is closed and the database let go on exit."""
    database = await asyncio.to_thread(open_database, database_url, home)
    try:
        await wait_for_database(database.url)
        pool = await create_pool(database.url)
        try:
            async with pool.acquire() as connection:
                await migrations.migrate(connection)
            yield database.url, pool
        finally:
            await pool.close()
    finally:
        database.release()
