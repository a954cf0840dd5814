"""The portal's settings, from environment variables, validated at start."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from pyjit.clock import Ids

SECRET_LENGTH_MIN = 32


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class PortalSettings:
    """Who signs the API's tokens, where sessions live, and how long things last."""

    redis_url: str | None = None
    key_prefix: str = "pyjit:portal:"
    jwt_secret: str = field(default="", repr=False)
    cookie_secure: bool = True
    session_idle_s: int = 30 * 60
    session_absolute_s: int = 12 * 3600
    access_token_s: int = 5 * 60
    refresh_token_s: int = 14 * 86400
    login_window_s: int = 15 * 60
    account_failures_max: int = 5
    address_failures_max: int = 50
    invite_valid_s: int = 7 * 86400


def settings_from_env(ids: Ids, env: Mapping[str, str] | None = None) -> PortalSettings:
    """Read REDIS_URL and the PYJIT_PORTAL_* variables; an unset secret is generated, which
    signs out API clients whenever the process restarts."""
    env = os.environ if env is None else env
    secret = env.get("PYJIT_PORTAL_SECRET") or ids.token(48)
    if len(secret) < SECRET_LENGTH_MIN:
        raise SettingsError(f"PYJIT_PORTAL_SECRET must have at least {SECRET_LENGTH_MIN} chars")
    secure = env.get("PYJIT_PORTAL_COOKIE_SECURE", "1").strip().lower()
    if secure not in ("0", "1", "true", "false"):
        raise SettingsError("PYJIT_PORTAL_COOKIE_SECURE must be 0 or 1")
    return PortalSettings(
        redis_url=env.get("REDIS_URL") or None,
        key_prefix=env.get("PYJIT_PORTAL_KEY_PREFIX", "pyjit:portal:"),
        jwt_secret=secret,
        cookie_secure=secure in ("1", "true"),
    )
