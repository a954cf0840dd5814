-- Stand-in answers: what an edge told the processor while the owning decider could not
-- answer in time. The row is committed before the answer leaves, so no stand-in answer is
-- ever unknown to us; `applied_at` is set once the owning decider has made the answer its
-- own (pyjit/standin.py), and a decider applies a token at most once because deciding is
-- idempotent by token.
CREATE TABLE standins (
    token text PRIMARY KEY,
    holder_token text NOT NULL,
    method text NOT NULL,
    approved boolean NOT NULL,
    decline_reason text,
    status integer NOT NULL,
    answer bytea NOT NULL,
    message bytea NOT NULL,
    answered_at timestamptz NOT NULL DEFAULT now(),
    applied_at timestamptz,
    result text
);

CREATE INDEX standins_pending ON standins (answered_at) WHERE applied_at IS NULL;
