"""Add-on services built on the Order Service's published contracts (order_functions/contracts) and nothing else
of its internals: each could move to its own function app unchanged."""
