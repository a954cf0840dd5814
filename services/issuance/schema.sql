-- The issuance service's own tables. Identifiers are sealed (see vault.py); a card keeps
-- its last four digits and nothing else of its number.
CREATE TABLE IF NOT EXISTS issuance_holders (
    token text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('user', 'business')),
    parent_token text REFERENCES issuance_holders (token),
    display_name text NOT NULL,
    status text NOT NULL,
    kyc_status text,
    kyc_attempts integer NOT NULL DEFAULT 0,
    identifications_sealed text,
    birth_date_sealed text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS issuance_cards (
    token text PRIMARY KEY,
    holder_token text NOT NULL REFERENCES issuance_holders (token),
    card_product_token text NOT NULL,
    state text NOT NULL,
    last_four text NOT NULL CHECK (last_four ~ '^[0-9]{4}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);
