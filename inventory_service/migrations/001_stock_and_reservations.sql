-- Stock and reservations (docs/architecture.md, the rules). `received` is all stock ever received (seed + restocks), so that
-- conservation is checkable at any time: received = available + Σ quantity of RESERVED reservations.
CREATE TABLE products (
    product_id  text PRIMARY KEY CHECK (product_id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    name        text NOT NULL,
    price_cents bigint NOT NULL DEFAULT 0 CHECK (price_cents >= 0),
    available   integer NOT NULL CHECK (available >= 0),
    received    integer NOT NULL CHECK (received >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (available <= received)
);

-- One row per order id, written once. PENDING exists only inside the deciding transaction.
CREATE TABLE reservations (
    order_id         uuid PRIMARY KEY,
    status           text NOT NULL CHECK (status IN ('PENDING', 'RESERVED', 'REJECTED', 'RELEASED')),
    short_product_id text NOT NULL DEFAULT '',
    reason           text NOT NULL DEFAULT '',
    was_reserved     boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    decided_at       timestamptz,
    released_at      timestamptz
);

CREATE TABLE reservation_items (
    order_id   uuid NOT NULL REFERENCES reservations (order_id) ON DELETE CASCADE,
    product_id text NOT NULL REFERENCES products (product_id),
    quantity   integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
);

CREATE INDEX reservation_items_product_idx ON reservation_items (product_id);
CREATE INDEX reservations_status_idx ON reservations (status);
