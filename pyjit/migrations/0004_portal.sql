-- The portal's own tables: who may sign in, which company they belong to, the cards and
-- expense controls the portal issued (the engine holds their live state; these rows say who
-- owns what), one-time secrets, and the audit log. The read models (transactions, holds,
-- accounts) stay the gateway's; the portal only adds the two indexes its pages read by.

CREATE TABLE portal_companies (
    id bigserial PRIMARY KEY,
    business_token text NOT NULL UNIQUE,
    name text NOT NULL,
    currency text NOT NULL DEFAULT 'USD',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE portal_users (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE CHECK (email = lower(email)),
    display_name text NOT NULL,
    role text NOT NULL CHECK (role IN ('program_admin', 'company_admin', 'employee',
                                       'cardholder', 'support', 'auditor')),
    company_id bigint REFERENCES portal_companies (id),
    -- The engine's user token of a cardholder or employee; staff have none.
    holder_token text UNIQUE,
    password_hash text,
    totp_secret text,
    totp_enabled boolean NOT NULL DEFAULT false,
    active boolean NOT NULL DEFAULT true,
    invite_hash text UNIQUE,
    invite_expires_at timestamptz,
    kyc_status text NOT NULL DEFAULT 'not_started'
        CHECK (kyc_status IN ('not_started', 'pending', 'approved', 'rejected')),
    kyc_attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((role IN ('company_admin', 'employee')) = (company_id IS NOT NULL))
);

CREATE INDEX portal_users_company ON portal_users (company_id, id);

CREATE TABLE portal_recovery_codes (
    user_id bigint NOT NULL REFERENCES portal_users (id),
    code_hash text NOT NULL,
    used_at timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE portal_cards (
    card_token text PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES portal_users (id),
    company_id bigint REFERENCES portal_companies (id),
    last_four text NOT NULL,
    expiration text NOT NULL,
    state text NOT NULL DEFAULT 'ACTIVE' CHECK (state IN ('ACTIVE', 'SUSPENDED', 'TERMINATED')),
    nickname text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX portal_cards_company ON portal_cards (company_id, created_at);
CREATE INDEX portal_cards_user ON portal_cards (user_id);

-- Employee groups: a control set on a group is loaded for each member (by their user
-- token), and again for whoever joins the group or gets a first card later.
CREATE TABLE portal_groups (
    id bigserial PRIMARY KEY,
    company_id bigint NOT NULL REFERENCES portal_companies (id),
    name text NOT NULL,
    UNIQUE (company_id, name)
);

CREATE TABLE portal_group_members (
    group_id bigint NOT NULL REFERENCES portal_groups (id),
    user_id bigint NOT NULL REFERENCES portal_users (id),
    PRIMARY KEY (group_id, user_id)
);

CREATE INDEX portal_group_members_user ON portal_group_members (user_id);

-- One row per control the portal loaded into the engine; `token` is the engine's
-- velocity or auth control token, so setting the same control again upserts it there too.
CREATE TABLE portal_controls (
    token text PRIMARY KEY,
    company_id bigint REFERENCES portal_companies (id),
    card_token text REFERENCES portal_cards (card_token),
    user_id bigint REFERENCES portal_users (id),
    -- Set on a group's own row and on each member's copy of it.
    group_id bigint REFERENCES portal_groups (id),
    kind text NOT NULL CHECK (kind IN ('per_transaction', 'daily', 'monthly', 'mcc_group',
                                       'country')),
    amount_minor bigint,
    scope_value text,
    set_by text NOT NULL CHECK (set_by IN ('company', 'holder')),
    active boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX portal_controls_card ON portal_controls (card_token);
CREATE INDEX portal_controls_user ON portal_controls (user_id);

-- Refresh tokens of the JSON API. A family is one sign-in; presenting a token already
-- used revokes the whole family, since one of its holders is an impostor.
CREATE TABLE portal_refresh_tokens (
    token_hash text PRIMARY KEY,
    family text NOT NULL,
    user_id bigint NOT NULL REFERENCES portal_users (id),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    revoked_at timestamptz
);

CREATE INDEX portal_refresh_family ON portal_refresh_tokens (family);

CREATE TABLE portal_audit (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    actor_id bigint REFERENCES portal_users (id),
    actor_email text NOT NULL,
    actor_role text NOT NULL,
    company_id bigint REFERENCES portal_companies (id),
    action text NOT NULL,
    target text NOT NULL DEFAULT '',
    detail jsonb NOT NULL DEFAULT '{}',
    address text NOT NULL DEFAULT ''
);

CREATE INDEX portal_audit_company ON portal_audit (company_id, id);

CREATE TABLE portal_kyc_checks (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES portal_users (id),
    reference text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    reasons text NOT NULL DEFAULT '',
    submitted_at timestamptz NOT NULL
);

CREATE TABLE portal_topups (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES portal_users (id),
    rail text NOT NULL CHECK (rail IN ('bank_transfer', 'crypto')),
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'settled', 'failed')),
    provider_reference text NOT NULL,
    gpa_order_token text UNIQUE,
    created_at timestamptz NOT NULL
);

-- The portal lists a company's transactions (they draw on the company's account) and a
-- holder's (by card), newest first. Each index costs the projector a little per row.
CREATE INDEX IF NOT EXISTS transactions_account_at ON transactions (account_token, at_ms);
CREATE INDEX IF NOT EXISTS transactions_card_at ON transactions (card_token, at_ms);
-- The program view counts the last hour's decisions; at_ms grows with the journal, so a BRIN
-- index answers that range for almost nothing per insert.
CREATE INDEX IF NOT EXISTS transactions_at_brin ON transactions USING brin (at_ms);
