-- Public, read-only shares of a session: a random id (a capability: whoever has the link
-- sees the page), at most one active per session, revoked by setting revoked_at.
CREATE TABLE session_shares (
    id text PRIMARY KEY CHECK (length(id) >= 22),
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    revoked_by uuid REFERENCES users (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX session_shares_active_idx ON session_shares (session_id)
    WHERE revoked_at IS NULL;
