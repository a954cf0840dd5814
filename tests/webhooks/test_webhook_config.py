"""The webhook intake's settings: credentials come as a pair, the signing secret follows the
processor's 20-50 character rule, and RABBITMQ_URL must be an AMQP URL. Each problem is
reported by name so an operator fixes a bad deployment in one round."""

import pytest

from pyjit.config import ConfigError, load_config

BASE = {"PYJIT_GATEWAY_USERNAME": "processor", "PYJIT_GATEWAY_PASSWORD": "Test-Secret-123456789!"}


def _problems(**environ: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config(environ={**BASE, **environ})
    return raised.value.problems


def test_webhook_settings_are_read() -> None:
    config = load_config(
        environ={
            **BASE,
            "PYJIT_WEBHOOK_USERNAME": "marqeta",
            "PYJIT_WEBHOOK_PASSWORD": "hook-password",
            "PYJIT_WEBHOOK_SECRET": "s" * 20,
            "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1/",
        }
    )
    assert (config.webhook_username, config.webhook_secret) == ("marqeta", "s" * 20)
    assert "hook-password" not in repr(config)


def test_half_a_credential_pair_is_refused() -> None:
    problems = _problems(PYJIT_WEBHOOK_USERNAME="marqeta")
    assert any("PYJIT_WEBHOOK_PASSWORD" in problem for problem in problems)


@pytest.mark.parametrize("length", [19, 51])
def test_secret_outside_the_processors_rule_is_refused(length: int) -> None:
    problems = _problems(
        PYJIT_WEBHOOK_USERNAME="marqeta",
        PYJIT_WEBHOOK_PASSWORD="hook-password",
        PYJIT_WEBHOOK_SECRET="s" * length,
    )
    assert problems == [f"PYJIT_WEBHOOK_SECRET must be 20-50 characters, got {length}"]


def test_rabbitmq_url_must_be_amqp() -> None:
    assert _problems(RABBITMQ_URL="http://127.0.0.1:15672") == [
        "RABBITMQ_URL must be an amqp:// or amqps:// URL"
    ]
