"""The decider's gRPC face (contracts in proto/pyjit/v1, stubs generated into pyjit/v1)."""
