-- The whole checkout's SQL for one single-item order sent WITH an Idempotency-Key (bench --idempotency-keys),
-- statement for statement as the product runs it:
--   1. OrdersRepository.create: BEGIN; claim the key; order + event; COMMIT;
--   2. the reservation and 3. the confirm exactly as in checkout.sql;
--   4. OrdersRepository.complete_key marks the key completed (one autocommit statement). Four commits per order.
-- Variables: -D nproducts=N (1 = the hot product). Key random (pgbench random()), order id gen_random_uuid().
\set pid random(1, :nproducts)
\set qty random(1, 3)
\set cust random(1, 1000)
\set k1 random(1, 4611686018427387903)
\set k2 random(1, 4611686018427387903)
BEGIN;
INSERT INTO idempotency_keys (customer_id, idem_key, fingerprint, order_id, expires_at)
  VALUES ('bench-cust-' || :cust::text, 'bench-' || :k1::text || '-' || :k2::text,
          encode(sha256(('bench-' || :pid::text || ':' || :qty::text)::bytea), 'hex'), gen_random_uuid(),
          now() + interval '24 hours')
  ON CONFLICT DO NOTHING RETURNING order_id \gset
WITH o AS (INSERT INTO orders (order_id, customer_id, status, items)
    VALUES (:order_id::uuid, 'bench-cust-' || :cust::text, 'pending',
            jsonb_build_array(jsonb_build_array('bench-' || :pid::text, :qty::int)))
    RETURNING order_id, customer_id, status, reason, items, created_at, updated_at, settled_via, settled_at,
      verify_attempts, cancel_requested_at),
  e AS (INSERT INTO order_events (order_id, to_status, via) SELECT order_id, 'pending', 'checkout' FROM o)
  SELECT * FROM o \gset
COMMIT;
BEGIN;
INSERT INTO reservations (order_id, status) VALUES (:order_id::uuid, 'PENDING') ON CONFLICT DO NOTHING;
SELECT product_id, available FROM products WHERE product_id = ANY(ARRAY['bench-' || :pid::text]::text[])
  ORDER BY product_id FOR UPDATE;
WITH decremented AS (UPDATE products p SET available = p.available - r.quantity, updated_at = now()
    FROM unnest(ARRAY['bench-' || :pid::text]::text[], ARRAY[:qty]::int[]) AS r(product_id, quantity)
    WHERE p.product_id = r.product_id AND p.available >= r.quantity RETURNING p.product_id),
  recorded AS (INSERT INTO reservation_items (order_id, product_id, quantity)
    SELECT :order_id::uuid, * FROM unnest(ARRAY['bench-' || :pid::text]::text[], ARRAY[:qty]::int[]))
  UPDATE reservations SET status = 'RESERVED', short_product_id = '', reason = '', decided_at = now(),
    was_reserved = true WHERE order_id = :order_id::uuid
  RETURNING decided_at, (SELECT count(*) FROM decremented) AS decremented;
COMMIT;
WITH before AS (SELECT status FROM orders WHERE order_id = :order_id::uuid),
  o AS (UPDATE orders SET status = 'confirmed', updated_at = now(),
      reason = CASE WHEN '' = '' THEN reason ELSE '' END,
      settled_via = COALESCE(settled_via, 'inventory-reply'), settled_at = COALESCE(settled_at, now())
    WHERE order_id = :order_id::uuid AND status = ANY(ARRAY['pending']::text[])
    RETURNING order_id, customer_id, status, reason, items, created_at, updated_at, settled_via, settled_at,
      verify_attempts, cancel_requested_at),
  e AS (INSERT INTO order_events (order_id, from_status, to_status, via, reason)
    SELECT o.order_id, (SELECT status FROM before), o.status, 'inventory-reply', '' FROM o)
  SELECT * FROM o;
UPDATE idempotency_keys SET completed_at = now()
  WHERE customer_id = 'bench-cust-' || :cust::text AND idem_key = 'bench-' || :k1::text || '-' || :k2::text
    AND completed_at IS NULL;
