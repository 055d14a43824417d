"""Whose orders these are: every customer-facing use case and query, decided from the authenticated `Principal`.

The customer is the token's subject. A body naming another customer is a 403; anybody else's order is a 404,
answered exactly like a missing one (an id that exists must not be told apart from one that does not). Listing
every customer's orders, or another customer's, needs the `ops` role. The checkout's caps are applied here too,
before anything is written, and its per-customer rate limit is handed to the order write, which takes the slot in
the order's own statement: only a checkout that writes an order counts (an idempotent replay, a key in use, an
unknown product or a write that timed out do not), and a limit that cannot be read in time is the write's 503.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from order_functions.application.cancel import CancelOrder, CancelResult
from order_functions.application.checkout import Checkout, CheckoutResult
from order_functions.application.deadline import Deadline
from order_functions.application.errors import OrderNotFound
from order_functions.application.identity import OPS_ROLE, Forbidden, Principal, require_role
from order_functions.application.queries import OrderQueries
from order_functions.domain.limits import OrderCaps, check_caps
from order_functions.domain.models import Order, OrderStatus
from order_functions.domain.rate_limit import RatePolicy
from order_functions.domain.validation import CheckoutBody, CheckoutRequest, ValidationFailed


def request_for(principal: Principal, body: CheckoutBody) -> CheckoutRequest:
    """The checkout in the caller's name; `customer_id` may be left out, but never name somebody else."""
    if body.customer_id is not None and body.customer_id != principal.subject:
        raise Forbidden("customer_id must be the signed-in customer (or left out)")
    return CheckoutRequest(principal.subject, body.items)


def visible(principal: Principal, order: Order) -> bool:
    return order.customer_id == principal.subject or principal.is_ops


class CustomerCheckout:
    def __init__(self, checkout: Checkout, caps: OrderCaps, rate: RatePolicy) -> None:
        self.checkout = checkout
        self.caps = caps
        self.rate = rate

    async def __call__(
        self, principal: Principal, body: CheckoutBody, key: str | None, deadline: Deadline | None = None
    ) -> CheckoutResult:
        """`deadline`: the answer's, fixed when the request arrived (from now when not given)."""
        request = request_for(principal, body)
        if problems := check_caps(request.items, self.caps):
            raise ValidationFailed(problems, title="Order over the limits")
        return await self.checkout(request, key, deadline, rate=self.rate)


class CustomerOrders:
    """The caller's view of orders: read, list and cancel only what they may."""

    def __init__(self, queries: OrderQueries, cancel: CancelOrder) -> None:
        self.queries = queries
        self.cancel_order = cancel

    async def get(self, principal: Principal, order_id: UUID) -> Order:
        order = await self.queries.get(order_id)
        if not visible(principal, order):
            raise OrderNotFound(order_id)
        return order

    async def recent(
        self, principal: Principal, *, status: OrderStatus | None, customer_id: str | None, limit: int,
        before: tuple[datetime, UUID] | None,
    ) -> list[Order]:
        """Without `customer_id` a customer lists their own orders and an operator everybody's."""
        if customer_id is None and not principal.is_ops:
            customer_id = principal.subject
        if customer_id != principal.subject:
            require_role(principal, OPS_ROLE)
        return await self.queries.recent(status=status, customer_id=customer_id, limit=limit, before=before)

    async def cancel(self, principal: Principal, order_id: UUID) -> CancelResult:
        """Only the customer cancels their order; for anybody else it does not exist."""
        order = await self.queries.get(order_id)
        if order.customer_id != principal.subject:
            raise OrderNotFound(order_id)
        return await self.cancel_order(order_id)
