-- ReserveStock in one call (docs/benchmarks.md, issue 14): the claim, the lock, the decision, the
-- guarded decrement, the record of items + outcome and the outbox events, all in one statement's transaction.
-- Five client round trips became one; the row locks are held for one call instead of across client round trips.
-- The rule is inventory_service.domain.rules.decide (all or nothing; the first short product by code point).
--
-- A replay (the order id was already claimed) changes nothing and returns the recorded outcome with its items,
-- which the caller compares with the requested ones (FAILED_PRECONDITION when they differ). Unknown products raise
-- SQLSTATE VX404 with the sorted missing ids in DETAIL: the statement rolls back, so bad input writes nothing.
CREATE FUNCTION reserve_stock(p_order uuid, p_ids text[], p_quantities int[], p_traceparent text, p_tracestate text)
RETURNS TABLE (out_status text, out_short_product_id text, out_reason text, out_decided_at timestamptz,
               out_replayed boolean, out_item_ids text[], out_item_quantities int[])
LANGUAGE plpgsql AS $$
DECLARE
    v_missing text[];
    v_short text;
    v_short_available integer;
    v_status text := 'RESERVED';
    v_reason text := '';
    v_decided_at timestamptz;
    v_decremented integer;
BEGIN
    -- 1. Claim the order id, once. A concurrent claimer of the same id waits here for the first one's commit.
    INSERT INTO reservations (order_id, status) VALUES (p_order, 'PENDING') ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN QUERY SELECT r.status, r.short_product_id, r.reason, r.decided_at, true,
            COALESCE(array_agg(i.product_id ORDER BY i.product_id) FILTER (WHERE i.product_id IS NOT NULL), '{}'),
            COALESCE(array_agg(i.quantity ORDER BY i.product_id) FILTER (WHERE i.product_id IS NOT NULL), '{}')
        FROM reservations r LEFT JOIN reservation_items i ON i.order_id = r.order_id
        WHERE r.order_id = p_order GROUP BY r.order_id;
        RETURN;
    END IF;

    -- 2. Lock every product in the fixed order (product id) before anything is decided: no deadlocks.
    PERFORM 1 FROM products p WHERE p.product_id = ANY (p_ids) ORDER BY p.product_id FOR UPDATE;
    SELECT array_agg(r.id ORDER BY r.id COLLATE "C") INTO v_missing FROM unnest(p_ids) AS r(id)
    WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.product_id = r.id);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'unknown products' USING ERRCODE = 'VX404', DETAIL = array_to_string(v_missing, ',');
    END IF;

    -- 3. Decide: all items covered, or rejected with the first short product.
    SELECT r.id, p.available INTO v_short, v_short_available
    FROM unnest(p_ids, p_quantities) AS r(id, quantity) JOIN products p ON p.product_id = r.id
    WHERE p.available < r.quantity ORDER BY r.id COLLATE "C" LIMIT 1;
    IF v_short IS NOT NULL THEN
        v_status := 'REJECTED';
        v_reason := format('insufficient stock for %s: %s available', v_short, v_short_available);
    END IF;

    -- 4. Record items + outcome and the decision's event.
    INSERT INTO reservation_items (order_id, product_id, quantity)
    SELECT p_order, r.id, r.quantity FROM unnest(p_ids, p_quantities) AS r(id, quantity);
    UPDATE reservations r SET status = v_status, short_product_id = COALESCE(v_short, ''), reason = v_reason,
        decided_at = now(), was_reserved = (v_status = 'RESERVED')
    WHERE r.order_id = p_order RETURNING r.decided_at INTO v_decided_at;
    INSERT INTO outbox (event_id, type, order_id, payload, traceparent, tracestate)
    SELECT gen_random_uuid(), CASE v_status WHEN 'RESERVED' THEN 'reservation.reserved' ELSE 'reservation.rejected' END,
        p_order, jsonb_build_object('reservation', jsonb_build_object(
            'status', v_status,
            'items', jsonb_agg(jsonb_build_object('product_id', r.id, 'quantity', r.quantity) ORDER BY r.n),
            'short_product_id', COALESCE(v_short, ''), 'reason', v_reason, 'tombstone', false)),
        p_traceparent, p_tracestate
    FROM unnest(p_ids, p_quantities) WITH ORDINALITY AS r(id, quantity, n);

    -- 5. Reserved: the guarded decrement and its stock.changed event. Every row is locked and was checked, so a
    --    row not decremented is a bug, never a race: raising rolls everything back.
    IF v_status = 'RESERVED' THEN
        WITH decremented AS (
            UPDATE products p SET available = p.available - r.quantity, version = p.version + 1, updated_at = now()
            FROM unnest(p_ids, p_quantities) AS r(id, quantity)
            WHERE p.product_id = r.id AND p.available >= r.quantity
            RETURNING p.product_id, p.name, p.available, p.received - p.available - p.shipped AS reserved,
                p.shipped, p.version
        ), changed AS (
            INSERT INTO outbox (event_id, type, order_id, payload, traceparent, tracestate)
            SELECT gen_random_uuid(), 'stock.changed', p_order, jsonb_build_object('cause', 'reserve',
                'products', jsonb_agg(to_jsonb(d) ORDER BY d.product_id)), p_traceparent, p_tracestate
            FROM decremented d
        )
        SELECT count(*) INTO v_decremented FROM decremented;
        IF v_decremented <> cardinality(p_ids) THEN
            RAISE EXCEPTION 'guarded decrement touched % of % rows', v_decremented, cardinality(p_ids);
        END IF;
    END IF;

    RETURN QUERY SELECT v_status, COALESCE(v_short, ''), v_reason, v_decided_at, false,
        NULL::text[], NULL::integer[];
END
$$;
