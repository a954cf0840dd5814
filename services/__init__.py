"""Services around the JIT funding gateway: the processor's REST client and its simulator."""
