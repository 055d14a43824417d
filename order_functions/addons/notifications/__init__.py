"""Customer notifications: one per terminal order transition, fed by topic `order-events` (subscription
`notifications`), idempotent by event id, in its own schema. See docs/order-events.md."""
