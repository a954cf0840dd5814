"""Configuration of `pyjit serve` and of the clients that talk to it.

Values come from an optional TOML file (`--config` or `PYJIT_CONFIG`) and from environment
variables, which win. Everything is validated at start and every problem is reported at
once, so an operator fixes a bad deployment in one round.
"""

import ipaddress
import math
import os
import string
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pyjit.clock import Ids

DEFAULT_HTTP_ADDR = "127.0.0.1:8080"
DEFAULT_GRPC_ADDR = "127.0.0.1:50051"

# Marqeta's rule for a program gateway's Basic credentials.
USERNAME_LENGTH = (1, 50)
PASSWORD_LENGTH = (20, 100)

DEMO_USERNAME = "pyjit-demo"

# Setting name -> (environment variable, kind). The TOML file uses the setting names.
SETTINGS: dict[str, tuple[str, type]] = {
    "home": ("PYJIT_HOME", str),
    "database_url": ("DATABASE_URL", str),
    "http_addr": ("PYJIT_HTTP_ADDR", str),
    "grpc_addr": ("PYJIT_GRPC_ADDR", str),
    "gateway_username": ("PYJIT_GATEWAY_USERNAME", str),
    "gateway_password": ("PYJIT_GATEWAY_PASSWORD", str),
    "admin_username": ("PYJIT_ADMIN_USERNAME", str),
    "admin_password": ("PYJIT_ADMIN_PASSWORD", str),
    "commit_budget_ms": ("PYJIT_COMMIT_BUDGET_MS", int),
    "batch_max_entries": ("PYJIT_BATCH_MAX_ENTRIES", int),
    "snapshot_interval_s": ("PYJIT_SNAPSHOT_INTERVAL_S", float),
    "snapshot_every_entries": ("PYJIT_SNAPSHOT_EVERY_ENTRIES", int),
    "expiry_interval_s": ("PYJIT_EXPIRY_INTERVAL_S", float),
    "log_level": ("PYJIT_LOG_LEVEL", str),
    # gRPC roles, shards and stand-in (docs/grpc.md).
    "shards": ("PYJIT_SHARDS", str),
    "edge_budget_ms": ("PYJIT_EDGE_BUDGET_MS", int),
    "standin_approve_up_to": ("PYJIT_STANDIN_APPROVE_UP_TO", str),
    "standin_currency": ("PYJIT_STANDIN_CURRENCY", str),
    "standin_mccs": ("PYJIT_STANDIN_MCCS", str),
    "grpc_token": ("PYJIT_GRPC_TOKEN", str),
    "redis_url": ("REDIS_URL", str),
    "rabbitmq_url": ("RABBITMQ_URL", str),
    "sentry_dsn": ("SENTRY_DSN", str),
    "ops_addr": ("PYJIT_OPS_ADDR", str),
    "webhook_username": ("PYJIT_WEBHOOK_USERNAME", str),
    "webhook_password": ("PYJIT_WEBHOOK_PASSWORD", str),
    "webhook_secret": ("PYJIT_WEBHOOK_SECRET", str),
    "webhook_max_age_s": ("PYJIT_WEBHOOK_MAX_AGE_S", float),
}

# Marqeta's rule for a webhook's signing secret.
WEBHOOK_SECRET_LENGTH = (20, 50)


class ConfigError(ValueError):
    """One or more configuration problems, each a full sentence."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Config:
    """Everything `pyjit serve` needs, validated."""

    home: Path = Path(".pyjit")
    database_url: str | None = None
    http_addr: Address = Address("127.0.0.1", 8080)
    grpc_addr: Address = Address("127.0.0.1", 50051)
    gateway_username: str = ""
    gateway_password: str = field(default="", repr=False)
    admin_username: str = ""
    admin_password: str = field(default="", repr=False)
    commit_budget_ms: int = 1500
    batch_max_entries: int = 4096
    snapshot_interval_s: float = 300.0
    snapshot_every_entries: int = 200_000
    expiry_interval_s: float = 60.0
    log_level: str = "INFO"
    shards: str = ""
    edge_budget_ms: int = 1500
    standin_approve_up_to: str = ""
    standin_currency: str = "USD"
    standin_mccs: str = ""
    grpc_token: str = field(default="", repr=False)
    # Optional servers: /ready probes each one that is set; SENTRY_DSN turns error tracking on.
    redis_url: str = ""
    rabbitmq_url: str = field(default="", repr=False)
    sentry_dsn: str = field(default="", repr=False)
    # Where a worker answers /health, /ready and /metrics (HOST:PORT); empty: nowhere.
    ops_addr: str = ""
    webhook_username: str = ""
    webhook_password: str = field(default="", repr=False)
    webhook_secret: str = field(default="", repr=False)
    # The processor retries a delivery for about 16 days (4 s, 16 s, ... 4**10 s), so an
    # event older than that is a replay from elsewhere, not a retry.
    webhook_max_age_s: float = 17 * 86400.0
    demo: bool = False

    @property
    def base_url(self) -> str:
        return f"http://{self.http_addr}"

    @property
    def admin_credentials(self) -> tuple[str, str]:
        """The admin endpoints' credentials: the admin pair if set, else the gateway's."""
        if self.admin_username:
            return self.admin_username, self.admin_password
        return self.gateway_username, self.gateway_password


def load_config(
    config_file: str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    demo: bool = False,
    ids: Ids | None = None,
) -> Config:
    """Read the TOML file and the environment, validate, and return the configuration.

    With `demo`, missing gateway credentials are generated with `ids` instead of refused.
    """
    env = os.environ if environ is None else environ
    path = config_file or env.get("PYJIT_CONFIG")
    raw = _read_toml(Path(path)) if path else {}
    problems: list[str] = []

    values = _merge(raw, env, problems)
    config = _build(values, problems, demo)
    if demo and not config.gateway_username and not config.gateway_password and ids is not None:
        config = replace(
            config, gateway_username=DEMO_USERNAME, gateway_password=demo_password(ids)
        )
    problems.extend(_check_credentials(config, demo))
    problems.extend(check_webhook_settings(config))

    if problems:
        raise ConfigError(problems)
    return config


def client_config(
    environ: Mapping[str, str] | None = None, config_file: str | None = None
) -> Config:
    """The configuration a command other than `serve` (`load`, `replay`, `migrate`) reads,
    without refusing missing credentials: a server will answer 401 and the client says so."""
    env = os.environ if environ is None else environ
    path = config_file or env.get("PYJIT_CONFIG")
    raw = _read_toml(Path(path)) if path else {}
    problems: list[str] = []
    config = _build(_merge(raw, env, problems), problems, demo=True)
    if problems:
        raise ConfigError(problems)
    return config


def demo_password(ids: Ids) -> str:
    """A password that meets Marqeta's rule, with every required class present."""
    return f"Dm0!{ids.token(28)}"


def check_username(username: str) -> list[str]:
    low, high = USERNAME_LENGTH
    if not low <= len(username) <= high:
        return [f"gateway username must be {low}-{high} characters, got {len(username)}"]
    if ":" in username:
        # Basic credentials are "username:password": the first colon ends the username.
        return ["gateway username must not contain ':' (RFC 7617)"]
    return []


def check_password(password: str) -> list[str]:
    """Marqeta's rule: 20-100 characters with an upper, a lower, a digit and a symbol."""
    low, high = PASSWORD_LENGTH
    problems = []
    if not low <= len(password) <= high:
        problems.append(f"gateway password must be {low}-{high} characters, got {len(password)}")
    classes = {
        "an uppercase letter": any(c.isupper() for c in password),
        "a lowercase letter": any(c.islower() for c in password),
        "a digit": any(c in string.digits for c in password),
        "a symbol": any(not c.isalnum() for c in password),
    }
    problems.extend(
        f"gateway password must contain {name}" for name, ok in classes.items() if not ok
    )
    return problems


def parse_address(text: str, name: str, problems: list[str]) -> Address:
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        problems.append(f"{name} must be HOST:PORT with a port 0-65535, got {text!r}")
        return Address("127.0.0.1", 0)
    return Address(host.strip("[]"), int(port_text))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError([f"cannot read config file {path}: {error.strerror}"]) from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"config file {path} is not valid TOML: {error}"]) from error


def _merge(raw: dict[str, Any], env: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    """File values, overridden by environment values, converted to their kinds."""
    unknown = sorted(set(raw) - set(SETTINGS))
    problems.extend(f"unknown setting {key!r} in the config file" for key in unknown)
    values: dict[str, Any] = {}
    for name, (variable, kind) in SETTINGS.items():
        source, value = (variable, env[variable]) if variable in env else (name, raw.get(name))
        if value is None:
            continue
        try:
            values[name] = _convert(value, kind)
        except (TypeError, ValueError):
            problems.append(f"{source} must be {kind.__name__}, got {value!r}")
    return values


def _convert(value: object, kind: type) -> object:
    if kind is str:
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    if isinstance(value, bool):
        raise TypeError(value)
    if kind is int:
        return int(value) if isinstance(value, int | str) else _fail(value)
    return float(value) if isinstance(value, int | float | str) else _fail(value)


def _fail(value: object) -> object:
    raise TypeError(value)


def _build(values: dict[str, Any], problems: list[str], demo: bool) -> Config:
    http_addr = parse_address(
        values.pop("http_addr", DEFAULT_HTTP_ADDR), "PYJIT_HTTP_ADDR", problems
    )
    grpc_addr = parse_address(
        values.pop("grpc_addr", DEFAULT_GRPC_ADDR), "PYJIT_GRPC_ADDR", problems
    )
    home = Path(values.pop("home", ".pyjit"))
    database_url = values.pop("database_url", None) or None
    config = Config(
        home=home,
        database_url=database_url,
        http_addr=http_addr,
        grpc_addr=grpc_addr,
        demo=demo,
        **values,
    )
    if config.commit_budget_ms < 1 or config.commit_budget_ms > 7000:
        problems.append("PYJIT_COMMIT_BUDGET_MS must be 1-7000 (the processor waits 1-7 s)")
    if config.batch_max_entries < 1:
        problems.append("PYJIT_BATCH_MAX_ENTRIES must be at least 1")
    for name in ("snapshot_interval_s", "expiry_interval_s", "webhook_max_age_s"):
        seconds = getattr(config, name)
        # NaN compares false with everything, so `<= 0` alone would let it through.
        if not (math.isfinite(seconds) and seconds > 0):
            problems.append(f"{SETTINGS[name][0]} must be a positive number, got {seconds!r}")
    if config.snapshot_every_entries < 1:
        problems.append("PYJIT_SNAPSHOT_EVERY_ENTRIES must be at least 1")
    # The nearest part of the path that exists must be a directory, or nothing can go under.
    existing = next((path for path in (config.home, *config.home.parents) if path.exists()), None)
    if existing is not None and not existing.is_dir():
        problems.append(f"PYJIT_HOME must be a directory, and {str(existing)!r} is a file")
    if config.grpc_token and len(config.grpc_token.strip()) < GRPC_TOKEN_MIN:
        problems.append(f"PYJIT_GRPC_TOKEN must be at least {GRPC_TOKEN_MIN} characters")
    if not config.grpc_token and not _is_loopback(grpc_addr.host):
        # gRPC loads programs and funds accounts: beyond this machine it needs a credential.
        problems.append(
            f"PYJIT_GRPC_TOKEN must be set when PYJIT_GRPC_ADDR ({grpc_addr.host}) is not a "
            "loopback address"
        )
    if config.database_url and not _is_postgresql_url(config.database_url):
        problems.append("DATABASE_URL must be a postgresql:// URL (user@host:port/database)")
    if not 1 <= config.edge_budget_ms <= 7000:
        problems.append("PYJIT_EDGE_BUDGET_MS must be 1-7000 (the processor waits 1-7 s)")
    if config.ops_addr:
        parse_address(config.ops_addr, "PYJIT_OPS_ADDR", problems)
    if config.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        problems.append("PYJIT_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
    return config


# A shared secret that guards money: long enough that guessing it is not an attack.
GRPC_TOKEN_MIN = 16


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_postgresql_url(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - reading it validates it
    except ValueError:
        return False
    return parts.scheme in ("postgresql", "postgres")


def _check_credentials(config: Config, demo: bool) -> list[str]:
    if not config.gateway_username and not config.gateway_password and not demo:
        return [
            "PYJIT_GATEWAY_USERNAME and PYJIT_GATEWAY_PASSWORD are required "
            "(the processor's Basic credentials); use `pyjit serve --demo` to generate them"
        ]
    problems = check_username(config.gateway_username) + check_password(config.gateway_password)
    if config.admin_username or config.admin_password:
        problems += [p.replace("gateway", "admin") for p in check_username(config.admin_username)]
        problems += [p.replace("gateway", "admin") for p in check_password(config.admin_password)]
    return problems


def check_webhook_settings(config: Config) -> list[str]:
    """The webhook intake's credentials come as a pair; a secret follows Marqeta's rule."""
    problems = []
    if bool(config.webhook_username) != bool(config.webhook_password):
        problems.append("set both PYJIT_WEBHOOK_USERNAME and PYJIT_WEBHOOK_PASSWORD, or neither")
    low, high = WEBHOOK_SECRET_LENGTH
    if config.webhook_secret and not low <= len(config.webhook_secret) <= high:
        problems.append(
            f"PYJIT_WEBHOOK_SECRET must be {low}-{high} characters, "
            f"got {len(config.webhook_secret)}"
        )
    if config.webhook_secret and not config.webhook_username:
        problems.append("PYJIT_WEBHOOK_SECRET needs PYJIT_WEBHOOK_USERNAME and _PASSWORD too")
    scheme = config.rabbitmq_url.partition("://")[0]
    if config.rabbitmq_url and scheme not in ("amqp", "amqps"):
        problems.append("RABBITMQ_URL must be an amqp:// or amqps:// URL")
    return problems
