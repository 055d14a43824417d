-- Local stand-in for the Azure Service Bus queue (used when no Service Bus is configured).
-- Everything lives in its own schema so it never clashes with the owning service's tables or migration versions.
CREATE SCHEMA IF NOT EXISTS localbus;

-- Enqueued messages that are not yet settled: available, scheduled (visible_at in the future) or locked.
CREATE TABLE localbus.messages (
    sequence_number        bigserial PRIMARY KEY,
    queue_name             text        NOT NULL,
    message_id             text        NOT NULL,
    body                   bytea       NOT NULL,
    application_properties jsonb       NOT NULL DEFAULT '{}'::jsonb,
    content_type           text,
    enqueued_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    visible_at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivery_count         integer     NOT NULL DEFAULT 0 CHECK (delivery_count >= 0),
    lock_token             uuid UNIQUE,
    locked_until           timestamptz,
    CHECK ((lock_token IS NULL) = (locked_until IS NULL))
);
CREATE INDEX messages_queue_seq ON localbus.messages (queue_name, sequence_number);

-- Duplicate detection history: a message id is remembered for the window from its first enqueue,
-- whether or not the message has since been completed or dead-lettered.
CREATE TABLE localbus.message_ids (
    queue_name  text        NOT NULL,
    message_id  text        NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (queue_name, message_id)
);
CREATE INDEX message_ids_expiry ON localbus.message_ids (queue_name, expires_at);

-- The dead-letter sub-queue.
CREATE TABLE localbus.dead_letters (
    sequence_number        bigint PRIMARY KEY,
    queue_name             text        NOT NULL,
    message_id             text        NOT NULL,
    body                   bytea       NOT NULL,
    application_properties jsonb       NOT NULL DEFAULT '{}'::jsonb,
    content_type           text,
    enqueued_at            timestamptz NOT NULL,
    delivery_count         integer     NOT NULL,
    dead_letter_reason     text        NOT NULL,
    dead_letter_description text,
    dead_lettered_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX dead_letters_queue ON localbus.dead_letters (queue_name, sequence_number);

-- Settled-message counters per queue (completed rows are deleted; their totals live here).
CREATE TABLE localbus.queue_counters (
    queue_name            text PRIMARY KEY,
    completed             bigint NOT NULL DEFAULT 0,
    completed_redeliveries bigint NOT NULL DEFAULT 0
);
