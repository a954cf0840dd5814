"""Fixtures of the webhook tests; they live in `wh_support` so tests can import helpers."""

from wh_support import rabbitmq_url, session, start

__all__ = ["rabbitmq_url", "session", "start"]
