"""domain layer of the Order Service."""
