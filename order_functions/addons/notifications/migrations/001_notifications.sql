-- The notifications add-on's own tables (schema `notifications`); it never reads the orders tables.

-- Every order event this consumer has applied, once (the primary key), with how often the bus delivered it.
CREATE TABLE processed_events (
    event_id    uuid PRIMARY KEY,
    order_id    uuid NOT NULL,
    type        text NOT NULL,
    version     integer NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    deliveries  integer NOT NULL DEFAULT 1
);

-- One notification per terminal transition (order.confirmed, .rejected, .cancelled, .shipped).
CREATE TABLE notifications (
    event_id     uuid PRIMARY KEY REFERENCES processed_events (event_id),
    order_id     uuid NOT NULL,
    customer_id  text NOT NULL,
    type         text NOT NULL,
    message      text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_order_idx ON notifications (order_id, occurred_at);
CREATE INDEX notifications_customer_idx ON notifications (customer_id, occurred_at DESC);
