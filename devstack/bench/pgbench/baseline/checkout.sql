-- BASELINE (before the round-trip change of docs/benchmarks.md): the checkout's SQL as the product ran it then:
-- BEGIN; order + event; COMMIT; then the baseline reservation transaction; then the confirm transition.
-- Use with the product code of that time: python -m devstack.bench --scripts devstack/bench/pgbench/baseline
\set pid random(1, :nproducts)
\set qty random(1, 3)
\set cust random(1, 1000)
BEGIN;
WITH o AS (INSERT INTO orders (order_id, customer_id, status, items)
    VALUES (gen_random_uuid(), 'bench-cust-' || :cust::text, 'pending',
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
UPDATE products p SET available = p.available - r.quantity, updated_at = now()
  FROM unnest(ARRAY['bench-' || :pid::text]::text[], ARRAY[:qty]::int[]) AS r(product_id, quantity)
  WHERE p.product_id = r.product_id AND p.available >= r.quantity;
WITH recorded AS (INSERT INTO reservation_items (order_id, product_id, quantity)
    SELECT :order_id::uuid, * FROM unnest(ARRAY['bench-' || :pid::text]::text[], ARRAY[:qty]::int[]))
  UPDATE reservations SET status = 'RESERVED', short_product_id = '', reason = '', decided_at = now(),
    was_reserved = true WHERE order_id = :order_id::uuid RETURNING decided_at;
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
