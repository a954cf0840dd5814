-- The journal, the engine snapshots and the read models derived from the journal.

CREATE TABLE journal (
    seq bigint PRIMARY KEY,
    kind text NOT NULL,
    token text NOT NULL,
    account_token text,
    posted_delta_minor bigint NOT NULL DEFAULT 0,
    held_delta_minor bigint NOT NULL DEFAULT 0,
    data bytea NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now()
);

-- Entries are ~2 kB of JSON, so most are compressed on the way in: lz4 does that for a
-- fraction of the default's CPU, and the journal's CPU is the commit path's. A server built
-- without lz4 keeps the default.
DO $$
BEGIN
    ALTER TABLE journal ALTER COLUMN data SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available; the journal uses the default compression';
END;
$$;

-- No secondary index on the journal: each would cost every commit, and the read models
-- (transactions by token, accounts, holds) answer the lookups.

CREATE TABLE snapshots (
    seq bigint PRIMARY KEY,
    digest text NOT NULL,
    data bytea NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE accounts (
    account_token text PRIMARY KEY,
    currency text,
    posted_minor bigint NOT NULL DEFAULT 0,
    held_minor bigint NOT NULL DEFAULT 0,
    credit_line_minor bigint NOT NULL DEFAULT 0,
    last_seq bigint NOT NULL DEFAULT 0
);

CREATE TABLE holds (
    hold_token text PRIMARY KEY,
    account_token text,
    amount_minor bigint NOT NULL,
    state text NOT NULL,
    expires_at_ms bigint,
    last_seq bigint NOT NULL
);

CREATE TABLE transactions (
    token text PRIMARY KEY,
    seq bigint NOT NULL,
    card_token text,
    account_token text,
    method text,
    amount_minor bigint,
    currency text,
    status integer NOT NULL,
    approved boolean NOT NULL,
    decline_reason text,
    rule_id text,
    rule_name text,
    merchant jsonb,
    at_ms bigint NOT NULL,
    voided_by_seq bigint
);

CREATE INDEX transactions_card ON transactions (card_token, at_ms);
