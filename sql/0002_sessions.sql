-- Sessions, their transcript, tool callbacks, idempotency keys, and minimal configurations.
--
-- The transcript cursor: every message row records `after_seq`, a JetStream sequence that
-- all of its events come after (written before its first event is published), and
-- `completed_seq`, the sequence of the event that completed it (written after that event is
-- stored). A reader that takes the stream's last sequence S first and then the rows can cut
-- a consistent transcript at some R <= S: complete rows with completed_seq <= R, and every
-- event after R from JetStream (see store/messages.py).

-- Minimal configurations (repos + commands + active snapshot); the repos area extends it.
CREATE TABLE configurations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    service_commands jsonb NOT NULL DEFAULT '[]',
    active_snapshot_id text,
    sandbox_provider text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);

CREATE TABLE sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    configuration_id uuid REFERENCES configurations (id) ON DELETE SET NULL,
    session_type text NOT NULL DEFAULT 'coding' CHECK (session_type IN ('coding', 'setup', 'cli')),
    client_type text NOT NULL DEFAULT 'web'
        CHECK (client_type IN ('web', 'slack', 'cli', 'automation')),
    client_metadata jsonb NOT NULL DEFAULT '{}',
    sandbox_mode text NOT NULL DEFAULT 'deferred' CHECK (sandbox_mode IN ('deferred', 'immediate')),
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'starting', 'running', 'paused', 'stopped', 'failed')),
    pause_reason text CHECK (pause_reason IN
        ('manual', 'credit_limit', 'inactivity', 'overage_cap', 'payment_failed')),
    stop_reason text CHECK (stop_reason IN
        ('manual', 'error', 'sandbox_terminated', 'auto_pause_failed', 'completed')),
    sandbox_provider text NOT NULL,
    sandbox_id text,
    agent_url text,
    tools_url text,
    preview_url text,
    sandbox_expires_at timestamptz,
    snapshot_id text,
    coding_agent_session_id text,
    agent_config jsonb NOT NULL DEFAULT '{}',
    system_prompt text,
    initial_prompt text,
    initial_prompt_sent_at timestamptz,
    title text NOT NULL DEFAULT '',
    automation_id uuid,
    trigger_id uuid,
    trigger_event_id uuid,
    trigger_context jsonb,
    idempotency_key text,
    outcome text,
    summary text,
    completion_id text,
    pr_urls text[] NOT NULL DEFAULT '{}',
    latest_task text,
    metrics jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    paused_at timestamptz,
    ended_at timestamptz,
    deleted_at timestamptz,
    last_activity_at timestamptz,
    metered_through_at timestamptz,
    last_seen_alive_at timestamptz,
    alive_check_failures integer NOT NULL DEFAULT 0,
    UNIQUE (org_id, idempotency_key),
    UNIQUE (automation_id, trigger_event_id)
);
CREATE INDEX sessions_org_created_idx ON sessions (org_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX sessions_status_idx ON sessions (status) WHERE status IN ('starting', 'running');

CREATE TABLE session_connections (
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    integration_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, integration_id)
);

-- Transcript: user prompts (Warren's ids) and agent messages (OpenCode's ids).
CREATE TABLE session_messages (
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    id text NOT NULL,
    ordinal bigint GENERATED ALWAYS AS IDENTITY,
    role text NOT NULL CHECK (role IN ('user', 'assistant')),
    content text NOT NULL DEFAULT '',
    sender_id text,
    source text NOT NULL DEFAULT 'agent',
    is_complete boolean NOT NULL DEFAULT false,
    cancelled boolean NOT NULL DEFAULT false,
    after_seq bigint NOT NULL,
    completed_seq bigint,
    -- User prompts: when OpenCode accepted it (a retried prompt is not sent twice).
    delivered_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    PRIMARY KEY (session_id, id)
);
CREATE INDEX session_messages_order_idx ON session_messages (session_id, ordinal);

CREATE TABLE session_message_parts (
    session_id uuid NOT NULL,
    message_id text NOT NULL,
    id text NOT NULL,
    position integer NOT NULL,
    part jsonb NOT NULL,
    PRIMARY KEY (session_id, message_id, id),
    FOREIGN KEY (session_id, message_id) REFERENCES session_messages (session_id, id)
        ON DELETE CASCADE
);

CREATE TABLE session_tool_invocations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    tool_name text NOT NULL,
    tool_call_id text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'executing', 'completed', 'failed')),
    input jsonb NOT NULL DEFAULT '{}',
    output jsonb,
    error text,
    duration_ms integer,
    attempts integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    UNIQUE (session_id, tool_name, tool_call_id)
);

-- Idempotency-Key replays: the first response is stored; a duplicate in flight gets 409.
CREATE TABLE idempotency_keys (
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    scope text NOT NULL,
    key text NOT NULL,
    request_hash text NOT NULL,
    status text NOT NULL CHECK (status IN ('in_flight', 'done')),
    status_code integer,
    response jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    PRIMARY KEY (org_id, scope, key)
);
