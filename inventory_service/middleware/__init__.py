"""Server interceptors and the chaos switches."""
