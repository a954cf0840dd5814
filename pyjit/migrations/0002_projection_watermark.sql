-- The read models are brought up to date by a projector behind the journal writer, in their
-- own transactions. `projected_seq` is the last journal seq they include; it moves in the
-- same transaction as the rows it describes, so after any crash the projector resumes at
-- exactly the first entry it had not applied.
CREATE TABLE projection_state (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    projected_seq bigint NOT NULL
);

-- Until now the read models were written in the journal's own transaction: a database that
-- has them is projected up to its last journal entry.
INSERT INTO projection_state (projected_seq) SELECT coalesce(max(seq), 0) FROM journal;

-- Nothing reads transactions by card yet, and each index is paid for on every projection.
DROP INDEX IF EXISTS transactions_card;
