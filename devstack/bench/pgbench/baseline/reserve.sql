-- BASELINE (before the round-trip change of docs/benchmarks.md): the reservation transaction as
-- StockRepository.reserve ran it then: BEGIN; claim; lock; guarded decrement; record; COMMIT (six round trips).
-- Use with the product code of that time: python -m devstack.bench --scripts devstack/bench/pgbench/baseline
\set pid random(1, :nproducts)
\set qty random(1, 3)
BEGIN;
INSERT INTO reservations (order_id, status) VALUES (gen_random_uuid(), 'PENDING') ON CONFLICT DO NOTHING
  RETURNING order_id AS oid \gset
SELECT product_id, available FROM products WHERE product_id = ANY(ARRAY['bench-' || :pid::text]::text[])
  ORDER BY product_id FOR UPDATE;
UPDATE products p SET available = p.available - r.quantity, updated_at = now()
  FROM unnest(ARRAY['bench-' || :pid::text]::text[], ARRAY[:qty]::int[]) AS r(product_id, quantity)
  WHERE p.product_id = r.product_id AND p.available >= r.quantity;
WITH recorded AS (INSERT INTO reservation_items (order_id, product_id, quantity)
    SELECT :oid::uuid, * FROM unnest(ARRAY['bench-' || :pid::text]::text[], ARRAY[:qty]::int[]))
  UPDATE reservations SET status = 'RESERVED', short_product_id = '', reason = '', decided_at = now(),
    was_reserved = true WHERE order_id = :oid::uuid RETURNING decided_at;
COMMIT;
