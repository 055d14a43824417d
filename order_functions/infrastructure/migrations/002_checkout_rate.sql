-- The per-customer checkout rate limit (docs/identity.md "Limits"): GCRA keeps one timestamp per customer, the
-- "theoretical arrival time". Shared by every Functions instance, so the limit does not multiply on scale-out.
CREATE TABLE checkout_rate (
    customer_id text PRIMARY KEY,
    tat         timestamptz NOT NULL
);
