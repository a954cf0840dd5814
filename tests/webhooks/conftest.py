"""Fixtures of the webhook tests; they live in `wh_support` so tests can import helpers."""

from program_support import program
from wh_support import rabbitmq_url, session, start

__all__ = ["program", "rabbitmq_url", "session", "start"]
