"""Inventory Service: the gRPC server that owns stock and decides each reservation exactly once."""
