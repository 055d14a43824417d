-- The order outbox (docs/order-events.md): what the Order Service must still tell the bus, written in
-- the same statement as the change that decided it, and sent by the relay (order_outbox.py).

-- order_events becomes the outbox of topic `order-events`: one row per transition, published once.
-- orders.event_version is bumped under the row lock by every transition, so versions follow commit order even
-- when two writers race (a statement's own snapshot could not count the winner's row).
ALTER TABLE orders ADD COLUMN event_version integer NOT NULL DEFAULT 1;
ALTER TABLE order_events
    ADD COLUMN event_uuid  uuid,
    ADD COLUMN customer_id text,
    ADD COLUMN type        text,
    ADD COLUMN version     integer,
    ADD COLUMN traceparent text NOT NULL DEFAULT '',
    ADD COLUMN tracestate  text NOT NULL DEFAULT '',
    ADD COLUMN sent_at     timestamptz,
    ADD COLUMN attempts    integer NOT NULL DEFAULT 0,
    ADD COLUMN last_error  text NOT NULL DEFAULT '';
-- History from before the outbox: numbered, and marked sent (it happened before anyone subscribed).
UPDATE order_events e SET event_uuid = gen_random_uuid(), customer_id = n.customer_id, version = n.version,
    type = CASE WHEN e.to_status = 'pending' THEN 'order.placed' ELSE 'order.' || e.to_status END, sent_at = e.at
FROM (SELECT e2.event_id, o.customer_id, row_number() OVER (PARTITION BY e2.order_id ORDER BY e2.event_id) AS version
      FROM order_events e2 JOIN orders o USING (order_id)) n
WHERE n.event_id = e.event_id;
UPDATE orders o SET event_version = v.n FROM (SELECT order_id, count(*) AS n FROM order_events GROUP BY order_id) v
WHERE v.order_id = o.order_id;
ALTER TABLE order_events
    ALTER COLUMN event_uuid SET NOT NULL,
    ALTER COLUMN customer_id SET NOT NULL,
    ALTER COLUMN type SET NOT NULL,
    ALTER COLUMN version SET NOT NULL,
    ADD CONSTRAINT order_events_event_uuid_key UNIQUE (event_uuid),
    ADD CONSTRAINT order_events_order_version_key UNIQUE (order_id, version);
CREATE INDEX order_events_unsent_idx ON order_events (event_id) WHERE sent_at IS NULL;

-- The intent to verify a pending order: written with the order, due when the checkout's budget ends, sent to the
-- verify-order queue only if the order is still pending then (the answer never waits for the bus). The reconciler
-- re-arms it for orders that stay pending.
CREATE TABLE verify_outbox (
    order_id    uuid PRIMARY KEY REFERENCES orders (order_id),
    due_at      timestamptz NOT NULL,
    traceparent text NOT NULL DEFAULT '',
    tracestate  text NOT NULL DEFAULT '',
    sent_at     timestamptz,
    outcome     text NOT NULL DEFAULT '' CHECK (outcome IN ('', 'sent', 'skipped')),
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text NOT NULL DEFAULT ''
);
CREATE INDEX verify_outbox_due_idx ON verify_outbox (due_at) WHERE sent_at IS NULL;
