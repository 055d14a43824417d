"""Checkout: validate against the catalogue, write the pending order (claiming the Idempotency-Key) with its intent
to verify, ask the inventory within what is left of the budget, and answer.

One deadline covers the whole answer: every step gets the time that is left, so the service's own work ends within
the budget (INVENTORY_TIMEOUT_SECONDS) whatever is slow or down, and the response leaves within the budget plus what
the HTTP host and the network add (the stated margin: 100 ms at p99, measured by `make chaos`). Nothing on this path
talks to the bus: the verify intent was written with the order, and the outbox relay sends it once the budget has
passed if the order is still pending then."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from opentelemetry import trace

from order_functions.application.catalogue import Catalogue
from order_functions.application.deadline import within
from order_functions.application.errors import (
    CheckoutTimedOut,
    IdempotencyInFlight,
    IdempotencyKeyReused,
    UnknownProduct,
)
from order_functions.application.ports import (
    Created,
    CreateResult,
    InFlight,
    InventoryUnavailable,
    KeyMismatch,
    OrderStore,
    Outbox,
    Replay,
    StoreUnavailable,
)
from order_functions.application.settle_order import SettleOrder
from order_functions.application.transitions import new_event
from order_functions.domain.models import Order, OrderStatus, SettledVia
from order_functions.domain.validation import CheckoutRequest

log = logging.getLogger(__name__)

# The inventory call ends this long before the budget (at most a tenth of it), so recording its answer (or
# completing the key of a 202) fits before the budget too, even when a burst of checkouts reaches its deadline at
# the same moment.
RECORD_RESERVE_S = 0.2


def record_reserve_s(budget_s: float) -> float:
    return min(RECORD_RESERVE_S, budget_s * 0.1)
# Below this there is no point in asking the inventory: the verify hand-off will.
MIN_CALL_S = 0.02


@dataclass(frozen=True)
class CheckoutResult:
    order: Order
    replayed: bool = False


@dataclass(frozen=True)
class _Deadline:
    at: float  # time.monotonic() when the budget ends

    def left(self) -> float:
        return self.at - time.monotonic()


class Checkout:
    def __init__(
        self,
        orders: OrderStore,
        catalogue: Catalogue,
        settle: SettleOrder,
        outbox: Outbox,
        inventory_timeout_s: float,
    ) -> None:
        self.orders = orders
        self.catalogue = catalogue
        self.settle = settle
        self.outbox = outbox
        self.budget_s = inventory_timeout_s

    async def __call__(self, request: CheckoutRequest, idempotency_key: str | None) -> CheckoutResult:
        deadline = _Deadline(time.monotonic() + self.budget_s)
        # a cold catalogue may take a quarter of the budget, never more
        catalogue_s = max(min(self.budget_s * 0.25, deadline.left()), MIN_CALL_S)
        unknown = await self.catalogue.unknown((i.product_id for i in request.items), catalogue_s)
        if unknown:
            raise UnknownProduct(unknown)
        match await self._create(request, idempotency_key, deadline):
            case Replay(order):
                return CheckoutResult(order, replayed=True)
            case InFlight(order_id):
                raise IdempotencyInFlight(order_id)
            case KeyMismatch(order_id):
                raise IdempotencyKeyReused(order_id)
            case Created(order):
                pass
        trace.get_current_span().set_attribute("valerix.order_id", str(order.order_id))
        try:
            settled = await self._settle_in_time(order, deadline)
        finally:
            if idempotency_key is not None:
                await self._complete_key(request.customer_id, idempotency_key, deadline)
        if settled.is_pending:
            # the verify intent falls due when the budget ends; wake the relay then (it also finds it by itself)
            self.outbox.kick(max(deadline.left(), 0.0))
        trace.get_current_span().set_attribute("valerix.order_status", settled.status.value)
        return CheckoutResult(settled)

    async def _create(self, request: CheckoutRequest, key: str | None, deadline: _Deadline) -> CreateResult:
        """The order write gets what is left of the budget; if it cannot finish, a clear 503. The key and the order
        commit together or not at all, so a retry with the same key either replays this order or starts afresh."""
        try:
            return await within(
                self.orders.create(
                    uuid.uuid4(), request, key, event=new_event(OrderStatus.PENDING), verify_after_s=self.budget_s
                ),
                max(deadline.left(), MIN_CALL_S), "the order write",
            )
        except TimeoutError as exc:
            log.warning("checkout: the order write did not finish within the %.1fs budget", self.budget_s)
            raise CheckoutTimedOut(self.budget_s) from exc

    async def _settle_in_time(self, order: Order, deadline: _Deadline) -> Order:
        ask_s = deadline.left() - record_reserve_s(self.budget_s)
        if ask_s < MIN_CALL_S:
            log.info("order %s: no time left to ask the inventory; handed to VerifyOrder", order.order_id)
            return order
        try:
            outcome = await self.settle.reserve(order, ask_s)
        except InventoryUnavailable as exc:
            log.info("order %s: no inventory answer in %.2fs (%s); handed to VerifyOrder",
                     order.order_id, ask_s, exc.code)
            return order
        try:
            return await within(
                self.settle.record(order, outcome, SettledVia.INVENTORY_REPLY),
                max(deadline.left(), MIN_CALL_S), f"recording order {order.order_id}",
            )
        except (TimeoutError, StoreUnavailable) as exc:
            # decided but not recorded in time: the customer hears "pending"; the verify hand-off records it
            log.warning("order %s: %s not recorded within the budget (%r); answering pending",
                        order.order_id, outcome.status.value, exc)
            return order

    async def _complete_key(self, customer_id: str, key: str, deadline: _Deadline) -> None:
        try:
            await within(
                self.orders.complete_key(customer_id, key), max(deadline.left(), MIN_CALL_S),
                "completing the idempotency key",
            )
        except (TimeoutError, StoreUnavailable) as exc:
            # the key stays "in flight" until IDEMPOTENCY_IN_FLIGHT_SECONDS, then replays this order
            log.warning("idempotency key of %s not completed in time: %r", customer_id, exc)
