"""Local stack, chaos and benchmark tooling: runs the whole system on one machine (docs/architecture.md)."""
