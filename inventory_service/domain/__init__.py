"""Reservation rules without I/O: validation, the all-or-nothing decision, replay comparison."""
