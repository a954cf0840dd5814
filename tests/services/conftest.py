"""Fixtures of the services tests; they live in `sim_support` so tests can import helpers."""

from sim_support import gateway, simulator, start_simulator, webhook_endpoint

__all__ = ["gateway", "simulator", "start_simulator", "webhook_endpoint"]
