"""What the Order Service publishes for others: message contracts that add-ons may depend on (and nothing else)."""
