"""Versioned schema migrations: plain `NNNN_name.sql` files in this package.

Each file runs once, in its own transaction, in version order, and is recorded in
`schema_migrations`. An advisory lock keeps two starting processes from racing.
"""

import logging
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyjit.database import Connection

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same for every pyjit process.
MIGRATION_LOCK_KEY = 0x7079_6A69_74

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """The migrations shipped in the package, in version order."""
    found = []
    for item in resources.files(__name__).iterdir():
        if not item.name.endswith(".sql"):
            continue
        number, _, rest = item.name.partition("_")
        found.append(Migration(int(number), rest.removesuffix(".sql"), item.read_text("utf-8")))
    versions = [migration.version for migration in found]
    assert len(versions) == len(set(versions)), "two migrations share a version number"
    return sorted(found, key=lambda migration: migration.version)


async def migrate(connection: "Connection") -> list[Migration]:
    """Apply every migration not applied yet; return the ones applied now."""
    applied_now = []
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        await connection.execute(CREATE_TABLE)
        done = {
            row["version"]
            for row in await connection.fetch("SELECT version FROM schema_migrations")
        }
        for migration in available():
            if migration.version in done:
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            log.info("applied migration %04d_%s", migration.version, migration.name)
            applied_now.append(migration)
    return applied_now
