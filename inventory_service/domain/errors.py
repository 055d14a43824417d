from __future__ import annotations


class InventoryError(Exception):
    """Base for errors that map to a gRPC status; the message is safe to show to the caller."""


class ValidationError(InventoryError):
    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors))


class UnknownProducts(InventoryError):
    def __init__(self, product_ids: list[str]) -> None:
        self.product_ids = product_ids
        super().__init__(f"unknown product(s): {', '.join(product_ids)}")


class ReservationNotFound(InventoryError):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"no reservation for order {order_id}")


class ItemsMismatch(InventoryError):
    """A replay of an order id with items other than the recorded ones."""

    def __init__(self, order_id: str) -> None:
        super().__init__(
            f"order {order_id} was already decided with different items; an order id cannot be reused"
        )


class PermissionDenied(InventoryError):
    pass


class InvalidTransition(InventoryError):
    """The reservation's state forbids the step (shipping a released order, releasing a shipped one)."""

    def __init__(self, order_id: str, status: str, action: str) -> None:
        self.status = status
        super().__init__(f"order {order_id} is {status}: it cannot be {action}")
