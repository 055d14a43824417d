"""interface layer of the Order Service."""
