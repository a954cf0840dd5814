"""Portal users: creation, sign-in lookups, invitations and the second factor's secrets."""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pyotp

from portal.passwords import hash_password
from portal.roles import COMPANY_ROLES, Role, Viewer
from pyjit.clock import Clock, Ids

RECOVERY_CODES = 10
RECOVERY_CODE_LENGTH = 12
INVITE_LENGTH = 32
# One 30-second step either side absorbs a phone's clock drift.
TOTP_VALID_WINDOW = 1


class UserError(ValueError):
    pass


@dataclass(frozen=True)
class Credentials:
    user_id: int
    password_hash: str | None
    totp_secret: str | None
    totp_enabled: bool
    role: Role
    active: bool


def digest(secret: str) -> str:
    """The stored form of a one-time secret: these are random, so a plain hash suffices."""
    return hashlib.sha256(secret.encode()).hexdigest()


def normal_email(email: str) -> str:
    return email.strip().lower()


async def create_user(
    connection: Any,
    email: str,
    display_name: str,
    role: Role,
    password: str | None = None,
    company_id: int | None = None,
    holder_token: str | None = None,
) -> int:
    """Insert a user; raises UserError for a taken address or a role without its company."""
    if (role in COMPANY_ROLES) != (company_id is not None):
        raise UserError(f"role {role} needs a company" if role in COMPANY_ROLES else "no company")
    try:
        # A savepoint, so a taken address leaves the caller's transaction usable.
        async with connection.transaction():
            user_id: int = await connection.fetchval(
                """INSERT INTO portal_users
                   (email, display_name, role, company_id, holder_token, password_hash)
                   VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
                normal_email(email),
                display_name,
                role.value,
                company_id,
                holder_token,
                hash_password(password) if password else None,
            )
    except asyncpg.UniqueViolationError as error:
        raise UserError(f"{email} already has an account") from error
    return user_id


async def credentials(pool: asyncpg.Pool, email: str) -> Credentials | None:
    row = await pool.fetchrow(
        """SELECT id, password_hash, totp_secret, totp_enabled, role, active
           FROM portal_users WHERE email = $1""",
        normal_email(email),
    )
    if row is None:
        return None
    return Credentials(
        row["id"],
        row["password_hash"],
        row["totp_secret"],
        row["totp_enabled"],
        Role(row["role"]),
        row["active"],
    )


async def viewer(pool: asyncpg.Pool, user_id: int) -> Viewer | None:
    """The active user with this id, as pages see them."""
    row = await pool.fetchrow(
        """SELECT id, email, display_name, role, company_id, holder_token
           FROM portal_users WHERE id = $1 AND active""",
        user_id,
    )
    if row is None:
        return None
    return Viewer(
        row["id"],
        row["email"],
        row["display_name"],
        Role(row["role"]),
        row["company_id"],
        row["holder_token"],
    )


def totp_matches(secret: str | None, code: str, clock: Clock) -> bool:
    code = code.strip().replace(" ", "")
    if not secret or not code.isdigit():
        return False
    now_s = clock.now_ms() // 1000
    return pyotp.TOTP(secret).verify(code, for_time=now_s, valid_window=TOTP_VALID_WINDOW)


async def start_enrolment(pool: asyncpg.Pool, user_id: int) -> str:
    """A fresh TOTP secret for the user, kept until they prove they can use it."""
    secret = pyotp.random_base32()
    await pool.execute(
        "UPDATE portal_users SET totp_secret = $2 WHERE id = $1 AND NOT totp_enabled",
        user_id,
        secret,
    )
    return secret


async def finish_enrolment(pool: asyncpg.Pool, user_id: int, ids: Ids) -> list[str]:
    """Turn the second factor on and return new one-time recovery codes (shown once)."""
    codes = [ids.token(RECOVERY_CODE_LENGTH) for _ in range(RECOVERY_CODES)]
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "UPDATE portal_users SET totp_enabled = true WHERE id = $1", user_id
        )
        await connection.execute("DELETE FROM portal_recovery_codes WHERE user_id = $1", user_id)
        await connection.executemany(
            "INSERT INTO portal_recovery_codes (user_id, code_hash) VALUES ($1, $2)",
            [(user_id, digest(code)) for code in codes],
        )
    return codes


async def use_recovery_code(pool: asyncpg.Pool, user_id: int, code: str) -> bool:
    """Spend a recovery code; each works once."""
    status = await pool.execute(
        """UPDATE portal_recovery_codes SET used_at = now()
           WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL""",
        user_id,
        digest(code.strip()),
    )
    return bool(status == "UPDATE 1")


async def issue_invite(connection: Any, user_id: int, clock: Clock, ids: Ids, valid_s: int) -> str:
    """A one-time link secret that lets a new user set their password."""
    secret = ids.token(INVITE_LENGTH)
    expires = datetime.fromtimestamp(clock.now_ms() / 1000, UTC) + timedelta(seconds=valid_s)
    await connection.execute(
        "UPDATE portal_users SET invite_hash = $2, invite_expires_at = $3 WHERE id = $1",
        user_id,
        digest(secret),
        expires,
    )
    return secret


async def accept_invite(pool: asyncpg.Pool, secret: str, password: str, clock: Clock) -> bool:
    now = datetime.fromtimestamp(clock.now_ms() / 1000, UTC)
    status = await pool.execute(
        """UPDATE portal_users SET password_hash = $2, invite_hash = NULL,
                                   invite_expires_at = NULL
           WHERE invite_hash = $1 AND invite_expires_at > $3 AND active""",
        digest(secret),
        hash_password(password),
        now,
    )
    return bool(status == "UPDATE 1")


async def invite_valid(pool: asyncpg.Pool, secret: str, clock: Clock) -> bool:
    now = datetime.fromtimestamp(clock.now_ms() / 1000, UTC)
    found = await pool.fetchval(
        "SELECT 1 FROM portal_users WHERE invite_hash = $1 AND invite_expires_at > $2 AND active",
        digest(secret),
        now,
    )
    return found is not None
