"""`python -m pyjit`, the same as the `pyjit` command."""

import sys

from pyjit.cli import main

sys.exit(main())
