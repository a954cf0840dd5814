"""pyjit: the JIT funding gateway of a card program issued on Marqeta."""
