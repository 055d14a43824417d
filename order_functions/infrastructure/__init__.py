"""infrastructure layer of the Order Service."""
