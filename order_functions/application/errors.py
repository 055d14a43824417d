"""Why a use case refused a request. Transport-neutral: the interface maps each to its HTTP answer in one place
(`order_functions/interface/problems.py`)."""

from __future__ import annotations

from uuid import UUID

from order_functions.domain.models import Order


class ApplicationError(Exception):
    """Base of every refusal a use case makes on purpose (nothing was changed by the refused request)."""


class OrderNotFound(ApplicationError):
    def __init__(self, order_id: UUID) -> None:
        self.order_id = order_id
        super().__init__(f"no order {order_id}")


class UnknownProduct(ApplicationError):
    def __init__(self, product_ids: list[str]) -> None:
        self.product_ids = product_ids
        super().__init__(f"no such product: {', '.join(product_ids)}")


class IdempotencyInFlight(ApplicationError):
    """The first request with this key is still being processed."""

    def __init__(self, order_id: UUID) -> None:
        self.order_id = order_id
        super().__init__(
            f"a request with this Idempotency-Key is still being processed (order {order_id}); retry shortly"
        )


class IdempotencyKeyReused(ApplicationError):
    """The key was used before with a different request body."""

    def __init__(self, order_id: UUID) -> None:
        self.order_id = order_id
        super().__init__("this Idempotency-Key was already used with a different request body")


class CheckoutRateLimited(ApplicationError):
    """This customer placed too many orders in too short a time; nothing was written."""

    def __init__(self, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"too many orders in a short time; retry in {retry_after_s} s")


class InvalidTransition(ApplicationError):
    """The order's state does not allow what was asked; `order` is its current state."""

    def __init__(self, order: Order, detail: str) -> None:
        self.order = order
        super().__init__(detail)


class OrderRejected(InvalidTransition):
    """A rejected order holds no stock: there is nothing to cancel."""


class AdminApiDisabled(ApplicationError):
    def __init__(self) -> None:
        super().__init__("the admin API is disabled (ADMIN_API_ENABLED)")


class ChaosAdminRefused(ApplicationError):
    """The inventory refused the admin call for want of the right token."""

    def __init__(self) -> None:
        super().__init__("the inventory refused the admin call (is INVENTORY_ADMIN_TOKEN set on both sides?)")


class ChaosSettingsRefused(ApplicationError):
    """The inventory refused the settings themselves."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"the inventory refused them: {detail}"[:300])
