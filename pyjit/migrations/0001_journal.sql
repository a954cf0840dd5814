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

CREATE INDEX journal_token ON journal (token);
CREATE INDEX journal_account ON journal (account_token) WHERE account_token IS NOT NULL;

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

CREATE INDEX holds_open ON holds (account_token) WHERE state = 'OPEN';

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

-- One group commit: append the batch to the journal and bring every read model up to date,
-- in one statement so a batch costs one round trip and one transaction. Entries already in
-- the journal (a retry after an ambiguous commit) are skipped, read models included.
CREATE FUNCTION journal_append(p_seq bigint[], p_data bytea[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_seq bigint[];
    v_doc jsonb[];
BEGIN
    WITH parsed AS (
        SELECT b.seq, b.data, convert_from(b.data, 'UTF8')::jsonb AS doc
        FROM unnest(p_seq, p_data) AS b(seq, data)
    ), inserted AS (
        INSERT INTO journal
            (seq, kind, token, account_token, posted_delta_minor, held_delta_minor, data)
        SELECT seq, doc->>'kind', doc->>'token', doc->>'account',
               coalesce((doc->>'posted_delta_minor')::bigint, 0),
               coalesce((doc->>'held_delta_minor')::bigint, 0),
               data
        FROM parsed
        ON CONFLICT (seq) DO NOTHING
        RETURNING seq
    )
    SELECT array_agg(p.seq ORDER BY p.seq), array_agg(p.doc ORDER BY p.seq)
    INTO v_seq, v_doc
    FROM parsed p JOIN inserted i ON i.seq = p.seq;

    IF v_seq IS NULL THEN
        RETURN 0;
    END IF;

    PERFORM project_transactions(v_seq, v_doc);
    PERFORM project_holds(v_seq, v_doc);
    PERFORM project_accounts(v_seq, v_doc);
    RETURN cardinality(v_seq);
END;
$$;

CREATE FUNCTION project_transactions(p_seq bigint[], p_doc jsonb[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO transactions (token, seq, card_token, account_token, method, amount_minor,
                              currency, status, approved, decline_reason, rule_id, rule_name,
                              merchant, at_ms)
    SELECT doc->>'token', seq, doc->>'card', doc->>'account', doc->>'method',
           (doc->>'amount_minor')::bigint, doc->>'currency',
           coalesce((doc->>'status')::integer, 200), coalesce((doc->>'approved')::boolean, true),
           doc->'decline'->>'reason', doc->'decline'->>'rule_id', doc->'decline'->>'rule_name',
           doc->'merchant', (doc->>'at_ms')::bigint
    FROM unnest(p_seq, p_doc) AS b(seq, doc)
    WHERE doc->>'kind' = 'decision'
    ON CONFLICT (token) DO NOTHING;

    UPDATE transactions t
    SET status = coalesce((v.doc->>'status')::integer, 402),
        approved = false,
        decline_reason = coalesce(v.doc->'decline'->>'reason', t.decline_reason),
        voided_by_seq = v.seq
    FROM unnest(p_seq, p_doc) AS v(seq, doc)
    WHERE v.doc->>'kind' = 'void' AND t.token = v.doc->>'token';
END;
$$;

CREATE FUNCTION project_holds(p_seq bigint[], p_doc jsonb[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    WITH touched AS (
        SELECT seq, doc->'hold'->>'token' AS hold_token, doc->>'account' AS account_token,
               (doc->'hold'->>'amount_minor')::bigint AS amount_minor,
               doc->'hold'->>'state' AS state,
               (doc->'hold'->>'expires_at_ms')::bigint AS expires_at_ms
        FROM unnest(p_seq, p_doc) AS b(seq, doc)
        WHERE jsonb_typeof(doc->'hold') = 'object'
        UNION ALL
        SELECT seq, h->>'token', h->>'account', (h->>'amount_minor')::bigint, 'EXPIRED', NULL
        FROM unnest(p_seq, p_doc) AS b(seq, doc),
             jsonb_array_elements(CASE WHEN jsonb_typeof(doc->'holds') = 'array'
                                       THEN doc->'holds' ELSE '[]'::jsonb END) AS h
    ), latest AS (
        SELECT DISTINCT ON (hold_token) * FROM touched
        WHERE hold_token IS NOT NULL ORDER BY hold_token, seq DESC
    )
    INSERT INTO holds AS o (hold_token, account_token, amount_minor, state, expires_at_ms,
                            last_seq)
    SELECT hold_token, account_token, coalesce(amount_minor, 0), coalesce(state, 'OPEN'),
           expires_at_ms, seq
    FROM latest
    ON CONFLICT (hold_token) DO UPDATE
    SET account_token = coalesce(EXCLUDED.account_token, o.account_token),
        amount_minor = CASE WHEN EXCLUDED.state = 'EXPIRED' THEN o.amount_minor
                            ELSE EXCLUDED.amount_minor END,
        state = EXCLUDED.state,
        expires_at_ms = coalesce(EXCLUDED.expires_at_ms, o.expires_at_ms),
        last_seq = EXCLUDED.last_seq;
END;
$$;

-- An entry's `balance` is the account after the entry, so the latest one in the batch sets
-- the projection; entries without it move the projection by their deltas.
CREATE FUNCTION project_accounts(p_seq bigint[], p_doc jsonb[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    WITH changes AS (
        SELECT seq, doc->>'account' AS account_token, doc->>'currency' AS currency,
               coalesce((doc->>'posted_delta_minor')::bigint, 0) AS posted_delta,
               coalesce((doc->>'held_delta_minor')::bigint, 0) AS held_delta,
               doc->'balance' AS balance
        FROM unnest(p_seq, p_doc) AS b(seq, doc)
        WHERE doc->>'account' IS NOT NULL
        UNION ALL
        SELECT seq, a->>'account', a->>'currency',
               coalesce((a->>'posted_delta_minor')::bigint, 0),
               coalesce((a->>'held_delta_minor')::bigint, 0), a->'balance'
        FROM unnest(p_seq, p_doc) AS b(seq, doc),
             jsonb_array_elements(CASE WHEN jsonb_typeof(doc->'accounts') = 'array'
                                       THEN doc->'accounts' ELSE '[]'::jsonb END) AS a
    ), per_account AS (
        SELECT account_token, max(currency) AS currency, sum(posted_delta) AS posted_delta,
               sum(held_delta) AS held_delta, max(seq) AS last_seq,
               (array_agg(balance ORDER BY seq DESC)
                    FILTER (WHERE jsonb_typeof(balance) = 'object'))[1] AS balance
        FROM changes GROUP BY account_token
    ), updated AS (
        UPDATE accounts a
        SET currency = coalesce(p.currency, a.currency),
            posted_minor = coalesce((p.balance->>'posted_minor')::bigint,
                                    a.posted_minor + p.posted_delta),
            held_minor = coalesce((p.balance->>'held_minor')::bigint,
                                  a.held_minor + p.held_delta),
            credit_line_minor = coalesce((p.balance->>'credit_line_minor')::bigint,
                                         a.credit_line_minor),
            last_seq = p.last_seq
        FROM per_account p
        WHERE a.account_token = p.account_token
        RETURNING a.account_token
    )
    INSERT INTO accounts (account_token, currency, posted_minor, held_minor, credit_line_minor,
                          last_seq)
    SELECT p.account_token, p.currency,
           coalesce((p.balance->>'posted_minor')::bigint, p.posted_delta),
           coalesce((p.balance->>'held_minor')::bigint, p.held_delta),
           coalesce((p.balance->>'credit_line_minor')::bigint, 0), p.last_seq
    FROM per_account p
    WHERE p.account_token NOT IN (SELECT account_token FROM updated);
END;
$$;
