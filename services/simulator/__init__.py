"""A Marqeta processor simulator: a test and demo tool, never a processor.

It serves the processor's REST API under /v3 with the processor's validation rules and
status codes, sends real JIT funding messages to the program gateway of each card
product's funding source, and delivers signed webhooks with the processor's retries. All
state lives in memory and is lost when it stops. Time and token generation are injected
(`ManualClock`, seeded `TokenSource`) so tests replay exactly.
"""

from services.simulator.app import create_app, state_of_app
from services.simulator.cli import main
from services.simulator.clock import ManualClock, SystemClock, TokenSource
from services.simulator.delivery import DeliveryPolicy, sign
from services.simulator.state import SimulatorConfig
from services.simulator.transactions import expire_due_holds

__all__ = [
    "DeliveryPolicy",
    "ManualClock",
    "SimulatorConfig",
    "SystemClock",
    "TokenSource",
    "create_app",
    "expire_due_holds",
    "main",
    "sign",
    "state_of_app",
]
