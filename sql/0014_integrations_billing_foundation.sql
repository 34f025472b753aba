-- Foundations shared by several areas, written once so each area extends them:
-- the integrations an org connects (GitHub App, Slack, Linear, Sentry, Nango, Gmail),
-- the org's billing state and shadow balance, and the LLM gateway's spend records.

CREATE TABLE integrations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    provider text NOT NULL
        CHECK (provider IN ('github-app', 'slack', 'linear', 'sentry', 'nango', 'gmail')),
    -- Installation id, Slack team id, Linear workspace, Nango connection id, ...
    external_id text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    scopes text[] NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'expired', 'revoked', 'suspended', 'deleted')),
    visibility text NOT NULL DEFAULT 'org' CHECK (visibility IN ('org', 'private')),
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, provider, external_id),
    -- Target of (org_id, integration_id) foreign keys: a binding row can only name an
    -- integration of its own org.
    UNIQUE (org_id, id)
);

-- Billing state of an org (see billing/): the shadow balance is the gate's truth.
ALTER TABLE orgs
    ADD COLUMN billing_state text NOT NULL DEFAULT 'unconfigured'
        CHECK (billing_state IN ('unconfigured', 'trial', 'active', 'grace', 'exhausted', 'suspended')),
    ADD COLUMN billing_plan text,
    ADD COLUMN shadow_balance numeric(14, 4) NOT NULL DEFAULT 0;

-- One row per upstream LLM call through Warren's gateway (llm/gateway); billing deducts
-- from these after a cursor.
CREATE TABLE llm_spend (
    request_id text PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    session_id uuid REFERENCES sessions (id) ON DELETE SET NULL,
    user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    model text NOT NULL,
    prompt_tokens integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0,
    cost_usd numeric(14, 8) NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX llm_spend_org_idx ON llm_spend (org_id, created_at, request_id);
