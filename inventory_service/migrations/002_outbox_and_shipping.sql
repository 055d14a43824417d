-- Shipping and the transactional outbox (docs/reservation-events.md).

-- SHIPPED: the reserved units have left the warehouse. Conservation becomes
--   received = available + Σ RESERVED quantities + shipped, with shipped = Σ SHIPPED quantities.
ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
ALTER TABLE reservations ADD CONSTRAINT reservations_status_check
    CHECK (status IN ('PENDING', 'RESERVED', 'REJECTED', 'RELEASED', 'SHIPPED'));
ALTER TABLE reservations ADD COLUMN shipped_at timestamptz;

ALTER TABLE products ADD COLUMN shipped integer NOT NULL DEFAULT 0 CHECK (shipped >= 0);
-- Bumped by every stock change, under the row lock: consumers of stock.changed keep the highest version seen.
ALTER TABLE products ADD COLUMN version bigint NOT NULL DEFAULT 0;
ALTER TABLE products ADD CONSTRAINT products_stock_conserved CHECK (available + shipped <= received);

-- One row per event, written in the transaction that made the decision; the relay sends and marks it.
CREATE TABLE outbox (
    sequence     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE,
    type         text NOT NULL CHECK (type IN ('reservation.reserved', 'reservation.rejected',
                                               'reservation.released', 'reservation.shipped', 'stock.changed')),
    order_id     uuid,
    payload      jsonb NOT NULL,
    traceparent  text NOT NULL DEFAULT '',
    tracestate   text NOT NULL DEFAULT '',
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text NOT NULL DEFAULT ''
);
CREATE INDEX outbox_unsent_idx ON outbox (sequence) WHERE sent_at IS NULL;
CREATE INDEX outbox_order_idx ON outbox (order_id) WHERE order_id IS NOT NULL;
