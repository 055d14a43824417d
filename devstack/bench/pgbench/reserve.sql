-- The reservation transaction alone, statement for statement as inventory_service/repository.py
-- StockRepository.reserve runs it for a single-item order: BEGIN; claim the order id; lock the product;
-- guarded decrement + items + outcome in one statement; COMMIT.
-- Variables: -D nproducts=N (products bench-1..bench-N; 1 = the hot product). The order id comes from
-- gen_random_uuid() in the claim itself (RETURNING ... \gset: no extra round trip).
\set pid random(1, :nproducts)
\set qty random(1, 3)
BEGIN;
INSERT INTO reservations (order_id, status) VALUES (gen_random_uuid(), 'PENDING') ON CONFLICT DO NOTHING
  RETURNING order_id AS oid \gset
SELECT product_id, available FROM products WHERE product_id = ANY(ARRAY['bench-' || :pid::text]::text[])
  ORDER BY product_id FOR UPDATE;
WITH decremented AS (UPDATE products p SET available = p.available - r.quantity, updated_at = now()
    FROM unnest(ARRAY['bench-' || :pid::text]::text[], ARRAY[:qty]::int[]) AS r(product_id, quantity)
    WHERE p.product_id = r.product_id AND p.available >= r.quantity RETURNING p.product_id),
  recorded AS (INSERT INTO reservation_items (order_id, product_id, quantity)
    SELECT :oid::uuid, * FROM unnest(ARRAY['bench-' || :pid::text]::text[], ARRAY[:qty]::int[]))
  UPDATE reservations SET status = 'RESERVED', short_product_id = '', reason = '', decided_at = now(),
    was_reserved = true WHERE order_id = :oid::uuid
  RETURNING decided_at, (SELECT count(*) FROM decremented) AS decremented;
COMMIT;
