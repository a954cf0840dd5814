"""Run the simulator: `python -m services.simulator --addr 127.0.0.1:8090`."""

import sys

from services.simulator.cli import main

sys.exit(main())
