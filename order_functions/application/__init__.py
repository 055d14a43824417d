"""application layer of the Order Service."""
