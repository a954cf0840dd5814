"""pyjit: the JIT funding gateway of a card program issued on Marqeta.

The decisions come from the compiled engine (`pyjit._engine`); this package is the asyncio
shell around it: configuration, the durable journal, recovery, the HTTP edge and the CLI.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
