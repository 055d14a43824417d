-- Topics with named subscriptions: a message sent to a topic is copied into each subscription's queue
-- (queue_name '<topic>/subscriptions/<name>', the Service Bus entity path), which then behaves like any queue.
-- Duplicate detection for a topic keys localbus.message_ids on the topic name.
CREATE TABLE localbus.subscriptions (
    topic_name        text NOT NULL CHECK (topic_name <> '' AND position('/' IN topic_name) = 0),
    subscription_name text NOT NULL CHECK (subscription_name <> '' AND position('/' IN subscription_name) = 0),
    queue_name        text GENERATED ALWAYS AS (topic_name || '/subscriptions/' || subscription_name) STORED,
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (topic_name, subscription_name)
);
