"""Order Service: the public checkout API as Azure Functions (Python v2 programming model)."""
