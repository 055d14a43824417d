"""Code both services share: database access, the embedded PostgreSQL, migrations and telemetry."""
