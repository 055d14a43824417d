-- Orders database (docs/architecture.md). The order side never reads the inventory's tables.
CREATE TABLE orders (
    order_id            uuid PRIMARY KEY,
    customer_id         text NOT NULL,
    status              text NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected', 'cancelled')),
    reason              text NOT NULL DEFAULT '',
    items               jsonb NOT NULL,
    settled_via         text,
    settled_at          timestamptz,
    verify_attempts     integer NOT NULL DEFAULT 0,
    verify_enqueued_at  timestamptz,
    cancel_requested_at timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_recent_idx ON orders (created_at DESC, order_id DESC);
CREATE INDEX orders_customer_idx ON orders (customer_id, created_at DESC);
CREATE INDEX orders_pending_idx ON orders (created_at) WHERE status = 'pending';
CREATE INDEX orders_cancel_requested_idx ON orders (cancel_requested_at)
    WHERE cancel_requested_at IS NOT NULL AND status IN ('pending', 'confirmed');

-- Idempotency-Key, scoped per customer (IETF draft). completed_at NULL = the first request is still in flight.
CREATE TABLE idempotency_keys (
    customer_id  text NOT NULL,
    idem_key     text NOT NULL,
    fingerprint  text NOT NULL,
    order_id     uuid NOT NULL REFERENCES orders (order_id) DEFERRABLE INITIALLY DEFERRED,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    completed_at timestamptz,
    PRIMARY KEY (customer_id, idem_key)
);
CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_at);

-- One row per state change, written in the same statement as the change: the seam for a transactional outbox
-- (notifications, payments, analytics) without touching the core flow.
CREATE TABLE order_events (
    event_id    bigserial PRIMARY KEY,
    order_id    uuid NOT NULL REFERENCES orders (order_id),
    from_status text,
    to_status   text NOT NULL,
    via         text NOT NULL,
    reason      text NOT NULL DEFAULT '',
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_events_order_idx ON order_events (order_id);
