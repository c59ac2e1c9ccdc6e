"""The coordinator service: the gRPC API, G-BAIR jobs run round by round with their state in Redis."""
