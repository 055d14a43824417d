"""`make chaos`: a seeded, repeatable consistency run against a private local stack (see docs/chaos.md)."""
