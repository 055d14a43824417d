"""Checkout: validate against the catalogue, write the pending order (claiming the Idempotency-Key and, with a rate
policy, the customer's checkout slot) with its intent to verify, ask the inventory within what is left of the
budget, and answer.

One deadline covers the whole answer: it starts when the request arrives (the interface fixes it, before
authentication) and every step gets the time that is left, so the service's own work ends
within the budget (INVENTORY_TIMEOUT_SECONDS) whatever is slow or down, and the response leaves within the budget
plus what the HTTP host and the network add (the stated margin: 100 ms at p99, measured by `make chaos`). Nothing on
this path talks to the bus: the verify intent was written with the order, and the outbox relay sends it once the
budget has passed if the order is still pending then."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from opentelemetry import trace

from order_functions.application.catalogue import Catalogue
from order_functions.application.deadline import Deadline, within
from order_functions.application.errors import (
    CheckoutRateLimited,
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
    Limited,
    OrderStore,
    Outbox,
    Replay,
    StoreUnavailable,
)
from order_functions.application.settle_order import SettleOrder
from order_functions.application.transitions import new_event
from order_functions.domain.models import Order, OrderStatus, SettledVia
from order_functions.domain.rate_limit import RatePolicy
from order_functions.domain.validation import CheckoutRequest

log = logging.getLogger(__name__)

# The inventory call (and any step that may end in a 503) ends this long before the budget (at most 15 % of it), so
# recording its answer (or completing the key of a 202) fits before the budget too, even when a burst of checkouts
# reaches its deadline at the same moment, and the answer then still has the time the host and a CPU-starved event
# loop take to send it: `make chaos` on this 2-core machine at load 5-6 measured up to 0.3 s between the inventory
# deadline and the client's receipt at p99 (0.2 s left POST /orders p99 at 2097-2104 ms there).
RECORD_RESERVE_S = 0.3


def record_reserve_s(budget_s: float) -> float:
    return min(RECORD_RESERVE_S, budget_s * 0.15)


# Below this there is no point in asking the inventory: the verify hand-off will.
MIN_CALL_S = 0.02
# A cold catalogue may take a quarter of the budget, never more: the order write and the inventory need the rest.
CATALOGUE_SHARE = 0.25


def before_answer_s(deadline: Deadline) -> float:
    """What a step that may end the checkout in a 503 (the order write) gets: what is left minus
    the same reserve, so even that answer (its log line, the host) leaves within the budget."""
    return max(deadline.left() - record_reserve_s(deadline.budget_s), MIN_CALL_S)


@dataclass(frozen=True)
class CheckoutResult:
    order: Order
    replayed: bool = False


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

    def deadline(self) -> Deadline:
        """A deadline starting now (callers that know when the request arrived pass their own)."""
        return Deadline.after(self.budget_s)

    async def __call__(
        self, request: CheckoutRequest, idempotency_key: str | None, deadline: Deadline | None = None,
        rate: RatePolicy | None = None,
    ) -> CheckoutResult:
        """`rate`: the customer's checkout rate limit, applied by the order write itself (none when not given)."""
        deadline = deadline or self.deadline()
        await self._check_products(request, deadline)
        match await self._create(request, idempotency_key, deadline, rate):
            case Replay(order):
                return CheckoutResult(order, replayed=True)
            case InFlight(order_id):
                raise IdempotencyInFlight(order_id)
            case KeyMismatch(order_id):
                raise IdempotencyKeyReused(order_id)
            case Limited(retry_after_s):
                log.info("checkout rate limit: customer %s, retry after %ds (%r)", request.customer_id,
                         retry_after_s, rate)
                raise CheckoutRateLimited(retry_after_s)
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

    async def _check_products(self, request: CheckoutRequest, deadline: Deadline) -> None:
        """Unknown products are a 422. A check that cannot finish in its share of the budget (a slow orders
        database) lets the order through: the inventory refuses unknown products itself (rejected, not lost)."""
        catalogue_s = deadline.share(CATALOGUE_SHARE, MIN_CALL_S)
        try:
            unknown = await within(
                self.catalogue.unknown((i.product_id for i in request.items), catalogue_s), catalogue_s,
                "the catalogue check",
            )
        except TimeoutError as exc:
            log.warning("checkout: product ids not checked (%s); the inventory checks them", exc)
            return
        if unknown:
            raise UnknownProduct(unknown)

    async def _create(
        self, request: CheckoutRequest, key: str | None, deadline: Deadline, rate: RatePolicy | None
    ) -> CreateResult:
        """The order write gets what is left of the budget before the answer's reserve (the wait for a connection
        too); if it cannot finish, a clear 503. The write is cancelled then, and psycopg cancels it in the server,
        so it rolls back: nothing is written and no checkout slot is taken. Only a COMMIT already under way at that
        moment can still land; that order is pending with its verify intent, so the relay settles it, and the same
        Idempotency-Key replays it (409 "in flight" until IDEMPOTENCY_IN_FLIGHT_SECONDS, then the order)."""
        left = before_answer_s(deadline)
        try:
            return await within(
                self.orders.create(
                    uuid.uuid4(), request, key, event=new_event(OrderStatus.PENDING), verify_after_s=self.budget_s,
                    wait_s=left, rate=rate,
                ),
                left, "the order write",
            )
        except TimeoutError as exc:
            log.warning("checkout: the order write did not finish within the %.1fs budget", self.budget_s)
            raise CheckoutTimedOut(self.budget_s) from exc

    async def _settle_in_time(self, order: Order, deadline: Deadline) -> Order:
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
                deadline.left_at_least(MIN_CALL_S), f"recording order {order.order_id}",
            )
        except (TimeoutError, StoreUnavailable) as exc:
            # decided but not recorded in time: the customer hears "pending"; the verify hand-off records it
            log.warning("order %s: %s not recorded within the budget (%r); answering pending",
                        order.order_id, outcome.status.value, exc)
            return order

    async def _complete_key(self, customer_id: str, key: str, deadline: Deadline) -> None:
        try:
            await within(
                self.orders.complete_key(customer_id, key), deadline.left_at_least(MIN_CALL_S),
                "completing the idempotency key",
            )
        except (TimeoutError, StoreUnavailable) as exc:
            # the key stays "in flight" until IDEMPOTENCY_IN_FLIGHT_SECONDS, then replays this order
            log.warning("idempotency key of %s not completed in time: %r", customer_id, exc)
