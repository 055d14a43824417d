"""Whose orders these are: every customer-facing use case and query, decided from the authenticated `Principal`.

The customer is the token's subject. A body naming another customer is a 403; anybody else's order is a 404,
answered exactly like a missing one (an id that exists must not be told apart from one that does not). Listing
every customer's orders, or another customer's, needs the `ops` role. The checkout's caps and per-customer rate
limit are applied here too, before anything is written; an idempotent replay does not count against the limit.
The rate limiter's statements run inside the checkout's deadline: a limiter that cannot answer in time is a 503.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import datetime
from typing import Protocol, TypeVar
from uuid import UUID

from order_functions.application.cancel import CancelOrder, CancelResult
from order_functions.application.checkout import MIN_CALL_S, Checkout, CheckoutResult, before_answer_s
from order_functions.application.deadline import Deadline, within
from order_functions.application.errors import (
    ApplicationError,
    CheckoutRateLimited,
    CheckoutTimedOut,
    OrderNotFound,
)
from order_functions.application.identity import OPS_ROLE, Forbidden, Principal, require_role
from order_functions.application.queries import OrderQueries
from order_functions.domain.limits import OrderCaps, check_caps
from order_functions.domain.models import Order, OrderStatus
from order_functions.domain.rate_limit import RateDecision
from order_functions.domain.validation import CheckoutBody, CheckoutRequest, ValidationFailed

log = logging.getLogger(__name__)

T = TypeVar("T")


class RateLimiter(Protocol):
    async def acquire(self, key: str, wait_s: float | None = None) -> RateDecision:
        """Takes one checkout slot of this customer, or says when to come back (`wait_s` bounds the wait for a
        database connection)."""

    async def refund(self, key: str) -> None:
        """Gives back a slot `acquire` took (the checkout was a replay, or wrote nothing)."""

    async def purge_idle(self, limit: int) -> int:
        """Forgets up to `limit` customers whose budget is full again (the reconciler's housekeeping)."""


class KeyLookup(Protocol):
    async def key_order(self, customer_id: str, key: str) -> UUID | None:
        """The order an unexpired Idempotency-Key of this customer names, if any (a read, nothing claimed)."""


def request_for(principal: Principal, body: CheckoutBody) -> CheckoutRequest:
    """The checkout in the caller's name; `customer_id` may be left out, but never name somebody else."""
    if body.customer_id is not None and body.customer_id != principal.subject:
        raise Forbidden("customer_id must be the signed-in customer (or left out)")
    return CheckoutRequest(principal.subject, body.items)


def visible(principal: Principal, order: Order) -> bool:
    return order.customer_id == principal.subject or principal.is_ops


class CustomerCheckout:
    def __init__(self, checkout: Checkout, keys: KeyLookup, limiter: RateLimiter, caps: OrderCaps) -> None:
        self.checkout = checkout
        self.keys = keys
        self.limiter = limiter
        self.caps = caps

    async def __call__(
        self, principal: Principal, body: CheckoutBody, key: str | None, deadline: Deadline | None = None
    ) -> CheckoutResult:
        """`deadline`: the answer's, fixed when the request arrived (from now when not given)."""
        deadline = deadline or self.checkout.deadline()
        request = request_for(principal, body)
        if problems := check_caps(request.items, self.caps):
            raise ValidationFailed(problems, title="Order over the limits")
        counted = await self._admit(request.customer_id, key, deadline)
        try:
            result = await self.checkout(request, key, deadline)
        except ApplicationError:  # refused before an order was written (unknown product, key in use)
            if counted:
                await self._refund(request.customer_id, deadline)
            raise
        if result.replayed and counted:
            await self._refund(request.customer_id, deadline)
        return result

    async def _admit(self, customer_id: str, key: str | None, deadline: Deadline) -> bool:
        """True when this checkout consumed a slot; a limited request passes only as a replay of its key."""
        decision = await self._in_time(self.limiter.acquire(customer_id, before_answer_s(deadline)),
                                       deadline, "the checkout rate limit")
        if decision.allowed:
            return True
        if key is not None and await self._in_time(self.keys.key_order(customer_id, key), deadline,
                                                   "the Idempotency-Key lookup") is not None:
            return False  # a retry of an order we already have: answer it, whatever the rate
        log.info("checkout rate limit: customer %s, retry after %ds", customer_id, decision.retry_after_s)
        raise CheckoutRateLimited(decision.retry_after_s)

    async def _in_time(self, step: Awaitable[T], deadline: Deadline, what: str) -> T:
        """A step before the order write, within what is left: past it nothing was written, a 503 says retry."""
        try:
            return await within(step, before_answer_s(deadline), what)
        except TimeoutError as exc:
            log.warning("checkout: %s did not answer within the %.1fs budget", what, deadline.budget_s)
            raise CheckoutTimedOut(deadline.budget_s) from exc

    async def _refund(self, customer_id: str, deadline: Deadline) -> None:
        """Gives the slot back within what is left; if it cannot, the customer has one slot fewer for a while."""
        try:
            await within(self.limiter.refund(customer_id), deadline.left_at_least(MIN_CALL_S),
                         "refunding a checkout slot")
        except Exception as exc:  # the answer is decided already: it must not turn into an error now
            log.warning("checkout slot of %s not refunded: %r", customer_id, exc)


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
