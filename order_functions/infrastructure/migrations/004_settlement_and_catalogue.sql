-- Issue 13, order side: shipped orders, the reservation events this service has consumed, the catalogue copy.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('pending', 'confirmed', 'rejected', 'cancelled', 'shipped'));

-- One row per reservation event handled (at-least-once delivery): a redelivery finds its id and does nothing.
-- effect: 'applied' (this event moved the order or the catalogue), 'no-op' (already there), 'unknown-order'.
CREATE TABLE consumed_events (
    event_id    uuid PRIMARY KEY,
    event_type  text NOT NULL,
    order_id    uuid,
    effect      text NOT NULL CHECK (effect IN ('applied', 'no-op', 'unknown-order')),
    consumed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consumed_events_order_idx ON consumed_events (order_id) WHERE order_id IS NOT NULL;

-- The Order Service's copy of the inventory's catalogue: fed by stock.changed events, kept by the highest per-product
-- version (events may arrive out of order), and refreshed in full from ListProducts now and then.
CREATE TABLE catalogue (
    product_id  text PRIMARY KEY,
    name        text NOT NULL,
    price_cents bigint,  -- NULL until a full refresh: stock events do not carry prices
    available   integer NOT NULL,
    reserved    integer NOT NULL,
    shipped     integer NOT NULL,
    version     bigint NOT NULL,
    synced_at   timestamptz NOT NULL DEFAULT now()  -- when this row was last confirmed by an event or a refresh
);
