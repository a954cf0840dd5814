"""Proves that `pyjit serve`'s configuration is read from TOML and environment (environment
wins), that Marqeta's credential rule is enforced with clear messages, that serving without
credentials is refused outside a demo, and that a demo generates valid credentials."""

from pathlib import Path

import pytest

from pyjit.clock import SystemIds
from pyjit.config import (
    Address,
    ConfigError,
    check_password,
    check_username,
    demo_password,
    load_config,
)

GOOD = {"PYJIT_GATEWAY_USERNAME": "processor", "PYJIT_GATEWAY_PASSWORD": "Secret-Enough-1234567!"}


def test_defaults_with_credentials() -> None:
    config = load_config(environ=GOOD)
    assert config.http_addr == Address("127.0.0.1", 8080)
    assert config.grpc_addr == Address("127.0.0.1", 50051)
    assert config.commit_budget_ms == 1500
    assert config.database_url is None
    assert config.home == Path(".pyjit")


def test_toml_file_then_environment_wins(tmp_path: Path) -> None:
    path = tmp_path / "pyjit.toml"
    path.write_text('http_addr = "0.0.0.0:9000"\ncommit_budget_ms = 800\nhome = "/srv/pyjit"\n')
    config = load_config(str(path), {**GOOD, "PYJIT_COMMIT_BUDGET_MS": "900"})
    assert config.http_addr == Address("0.0.0.0", 9000)
    assert config.commit_budget_ms == 900
    assert config.home == Path("/srv/pyjit")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "pyjit.toml"
    path.write_text('http_addr = "nohost"\nbogus = 1\n')
    env = {
        "PYJIT_COMMIT_BUDGET_MS": "soon",
        "PYJIT_GATEWAY_USERNAME": "x" * 51,
        "PYJIT_GATEWAY_PASSWORD": "short",
    }
    with pytest.raises(ConfigError) as raised:
        load_config(str(path), env)
    text = "\n".join(raised.value.problems)
    assert "unknown setting 'bogus'" in text
    assert "PYJIT_HTTP_ADDR must be HOST:PORT" in text
    assert "PYJIT_COMMIT_BUDGET_MS must be int" in text
    assert "username must be 1-50 characters" in text
    assert "password must be 20-100 characters" in text


def test_missing_credentials_refused_outside_demo() -> None:
    with pytest.raises(ConfigError, match="PYJIT_GATEWAY_USERNAME and PYJIT_GATEWAY_PASSWORD"):
        load_config(environ={})


def test_demo_generates_valid_credentials() -> None:
    config = load_config(environ={}, demo=True, ids=SystemIds())
    assert check_username(config.gateway_username) == []
    assert check_password(config.gateway_password) == []


@pytest.mark.parametrize(
    ("password", "missing"),
    [
        ("alllowercase-and-digits-1", "an uppercase letter"),
        ("ALLUPPERCASE-AND-DIGITS-1", "a lowercase letter"),
        ("No-Digits-In-This-Password", "a digit"),
        ("NoSymbolsInThisPassword123", "a symbol"),
    ],
)
def test_password_classes(password: str, missing: str) -> None:
    assert check_password(password) == [f"gateway password must contain {missing}"]


def test_demo_password_meets_rule_every_time() -> None:
    ids = SystemIds()
    assert all(check_password(demo_password(ids)) == [] for _ in range(200))


def test_unreadable_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(str(path), GOOD)


def test_numbers_that_are_not_numbers_and_paths_that_are_not_homes_are_refused(
    tmp_path: Path,
) -> None:
    a_file = tmp_path / "home"
    a_file.write_text("not a directory")
    env = {
        **GOOD,
        "PYJIT_SNAPSHOT_INTERVAL_S": "nan",
        "PYJIT_EXPIRY_INTERVAL_S": "inf",
        "PYJIT_WEBHOOK_MAX_AGE_S": "-1",
        "PYJIT_SNAPSHOT_EVERY_ENTRIES": "-5",
        "PYJIT_HOME": str(a_file),
        "DATABASE_URL": "postgresql://root@[::garbage/pyjit",
    }

    with pytest.raises(ConfigError) as raised:
        load_config(environ=env)

    text = "\n".join(raised.value.problems)
    assert "PYJIT_SNAPSHOT_INTERVAL_S must be a positive number, got nan" in text
    assert "PYJIT_EXPIRY_INTERVAL_S must be a positive number, got inf" in text
    assert "PYJIT_WEBHOOK_MAX_AGE_S must be a positive number, got -1.0" in text
    assert "PYJIT_SNAPSHOT_EVERY_ENTRIES must be at least 1" in text
    assert "PYJIT_HOME must be a directory" in text
    assert "DATABASE_URL must be a postgresql:// URL" in text


def test_a_home_below_a_file_is_refused_at_start(tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-directory"
    a_file.write_text("x")

    with pytest.raises(ConfigError) as raised:
        load_config(environ={**GOOD, "PYJIT_HOME": str(a_file / "pyjit")})

    assert raised.value.problems == [
        f"PYJIT_HOME must be a directory, and {str(a_file)!r} is a file"
    ]


@pytest.mark.parametrize("address", ["0.0.0.0:50051", "10.1.2.3:50051", "decider:50051"])
def test_grpc_beyond_loopback_needs_a_token(address: str) -> None:
    env = {**GOOD, "PYJIT_GRPC_ADDR": address}

    with pytest.raises(ConfigError) as raised:
        load_config(environ=env)
    with_token = load_config(environ={**env, "PYJIT_GRPC_TOKEN": "a-shared-secret-42"})
    with pytest.raises(ConfigError) as weak:
        load_config(environ={**env, "PYJIT_GRPC_TOKEN": "      short      "})

    assert raised.value.problems[0].startswith("PYJIT_GRPC_TOKEN must be set")
    assert with_token.grpc_token == "a-shared-secret-42"
    assert weak.value.problems == ["PYJIT_GRPC_TOKEN must be at least 16 characters"]


@pytest.mark.parametrize("address", ["127.0.0.1:50051", "[::1]:50051", "localhost:0"])
def test_grpc_on_loopback_needs_no_token(address: str) -> None:
    assert load_config(environ={**GOOD, "PYJIT_GRPC_ADDR": address}).grpc_token == ""


def test_a_username_with_a_colon_is_refused() -> None:
    assert check_username("proc:essor") == ["gateway username must not contain ':' (RFC 7617)"]
    assert check_username("processor") == []
