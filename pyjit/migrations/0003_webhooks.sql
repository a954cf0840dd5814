-- The processor's webhooks: every delivery as it arrived, the queue of its events when no
-- RabbitMQ is configured, what the consumers applied, and the events waiting for a parent.
-- Also the watermark of the relay that publishes journal entries to RabbitMQ.

-- The exact bytes received, kept so a delivery can be audited or replayed.
CREATE TABLE webhook_deliveries (
    id bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    signature text,
    event_count integer NOT NULL,
    body bytea NOT NULL,
    published_at timestamptz
);

-- The queue of events when RabbitMQ is not configured. A consumer claims a row by moving
-- `available_at` past now (a lease) and counting the attempt, so a consumer that dies
-- mid-event gives its rows back when the lease runs out, and that death counts as an
-- attempt, as the broker counts a delivery that was never acknowledged.
CREATE TABLE webhook_queue (
    id bigserial PRIMARY KEY,
    delivery_id bigint NOT NULL REFERENCES webhook_deliveries (id),
    event_token text NOT NULL,
    event_type text NOT NULL,
    body bytea NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    available_at timestamptz NOT NULL DEFAULT now(),
    done_at timestamptz,
    dead_at timestamptz,
    last_error text
);

CREATE INDEX webhook_queue_ready ON webhook_queue (available_at, id)
    WHERE done_at IS NULL AND dead_at IS NULL;

-- One row per event token: the dedupe record, and what the event reported.
CREATE TABLE webhook_events (
    event_token text PRIMARY KEY,
    event_type text NOT NULL,
    outcome text NOT NULL,
    holder_token text,
    card_token text,
    state text,
    amount text,
    currency text,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- Events that arrived before their parent (a clearing before its authorization, a card
-- transition before the card): retried until the parent is known.
CREATE TABLE webhook_parked (
    event_token text PRIMARY KEY,
    event_type text NOT NULL,
    body bytea NOT NULL,
    waiting_for text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    parked_at timestamptz NOT NULL DEFAULT now(),
    retry_at timestamptz NOT NULL DEFAULT now()
);

-- Card and account holder states as the processor's webhooks last reported them, with the
-- time of that report, so an older transition delivered late never overwrites a newer one.
CREATE TABLE webhook_states (
    object_token text PRIMARY KEY,
    object_kind text NOT NULL,
    state text NOT NULL,
    event_token text NOT NULL,
    event_time text NOT NULL
);

-- The journal is the transactional outbox of decisions: an entry exists exactly when its
-- decision committed. The relay publishes entries after `published_seq` and moves it on.
-- Entries written before the relay existed are not published.
CREATE TABLE publication_state (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    published_seq bigint NOT NULL
);

INSERT INTO publication_state (published_seq) SELECT coalesce(max(seq), 0) FROM journal;
