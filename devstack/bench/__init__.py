"""`make bench`: checkout throughput and latency over HTTP, as a ratio to the physical limit of the same machine.

See docs/benchmarks.md. Modules: `runner` (one run: stack, steps, profile), `http_load` (the closed-loop HTTP
client), `pg_limit` (pgbench with the product's own SQL), `memory` (peak RSS and CPU per process group),
`profiling` (py-spy summaries), `report` (tables, JSON, comparison).
"""
