-- Automations, triggers, trigger events, runs, the outbox and cron schedules.
--
-- Idempotency lives in unique keys, so every consumer may see a message twice:
--   trigger_events (trigger_id, dedup_key)        one event per provider delivery
--   automation_runs (trigger_event_id)            one run per trigger event
--   automation_side_effects (org_id, effect_id)   one external effect per idempotency key

CREATE TABLE automations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    enabled boolean NOT NULL DEFAULT true,
    agent_instructions text NOT NULL DEFAULT '',
    model_id text,
    default_configuration_id uuid REFERENCES configurations (id) ON DELETE SET NULL,
    allow_agentic_repo_selection boolean NOT NULL DEFAULT false,
    enabled_tools text[] NOT NULL DEFAULT '{}',
    max_run_seconds integer NOT NULL DEFAULT 3600 CHECK (max_run_seconds BETWEEN 60 AND 86400),
    notify_slack_channel text,
    -- AES-256-GCM sealed bot token (see security/sealing.py); never returned by the API.
    notify_slack_token_sealed text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX automations_org_idx ON automations (org_id, created_at DESC);

CREATE TABLE automation_connections (
    automation_id uuid NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    integration_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (automation_id, integration_id)
);

CREATE TABLE triggers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- At most one automation; NULL = unbound (events are recorded and skipped).
    automation_id uuid REFERENCES automations (id) ON DELETE SET NULL,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    name text NOT NULL DEFAULT '',
    trigger_type text NOT NULL CHECK (trigger_type IN ('webhook', 'polling', 'manual')),
    provider text NOT NULL CHECK (provider IN
        ('github', 'linear', 'sentry', 'posthog', 'gmail', 'webhook', 'custom', 'scheduled')),
    enabled boolean NOT NULL DEFAULT true,
    -- Hidden triggers (Run now, schedules) are internal: not listed, not addressable by URL.
    hidden boolean NOT NULL DEFAULT false,
    webhook_url_path text UNIQUE,
    webhook_secret_sealed text,
    polling_cron text,
    timezone text NOT NULL DEFAULT 'UTC',
    polling_cursor text,
    last_polled_at timestamptz,
    -- Polling triggers (cron firings and polls): the next slot the scheduler acts on.
    next_fire_at timestamptz,
    poll_token_sealed text,
    config jsonb NOT NULL DEFAULT '{}',
    integration_id uuid,
    -- Nango connection id: forwarded webhooks find their triggers by it.
    connection_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX triggers_org_idx ON triggers (org_id, created_at DESC);
CREATE INDEX triggers_automation_idx ON triggers (automation_id);
CREATE INDEX triggers_connection_idx ON triggers (connection_id) WHERE connection_id IS NOT NULL;
CREATE INDEX triggers_due_idx ON triggers (next_fire_at)
    WHERE enabled AND trigger_type = 'polling';

CREATE TABLE trigger_events (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    trigger_id uuid NOT NULL REFERENCES triggers (id) ON DELETE CASCADE,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    automation_id uuid REFERENCES automations (id) ON DELETE SET NULL,
    external_event_id text,
    provider_event_type text NOT NULL DEFAULT '',
    status text NOT NULL CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'skipped')),
    skip_reason text,
    session_id uuid REFERENCES sessions (id) ON DELETE SET NULL,
    raw_payload jsonb,
    parsed_context jsonb,
    dedup_key text NOT NULL,
    error text,
    -- When the delivery reached Warren (not when it was processed): dedup windows use it.
    received_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    UNIQUE (trigger_id, dedup_key)
);
CREATE INDEX trigger_events_trigger_idx ON trigger_events (trigger_id, created_at DESC);
CREATE INDEX trigger_events_org_idx ON trigger_events (org_id, created_at DESC);

-- What the trigger pool did with an event (audit trail, one row per step).
CREATE TABLE trigger_event_actions (
    id bigserial PRIMARY KEY,
    trigger_event_id uuid NOT NULL REFERENCES trigger_events (id) ON DELETE CASCADE,
    action text NOT NULL,
    status text NOT NULL CHECK (status IN ('completed', 'failed', 'skipped')),
    detail jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX trigger_event_actions_event_idx ON trigger_event_actions (trigger_event_id);

CREATE TABLE automation_runs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    automation_id uuid NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    trigger_id uuid REFERENCES triggers (id) ON DELETE SET NULL,
    trigger_event_id uuid NOT NULL UNIQUE REFERENCES trigger_events (id) ON DELETE CASCADE,
    status text NOT NULL CHECK (status IN
        ('queued', 'enriching', 'ready', 'running', 'succeeded', 'failed', 'needs_human',
         'timed_out')),
    status_reason text,
    failure_stage text,
    lease_owner text,
    lease_expires_at timestamptz,
    lease_version integer NOT NULL DEFAULT 0,
    queued_at timestamptz NOT NULL DEFAULT now(),
    enrichment_started_at timestamptz,
    ready_at timestamptz,
    started_at timestamptz,
    completed_at timestamptz,
    last_activity_at timestamptz NOT NULL DEFAULT now(),
    deadline_at timestamptz,
    session_id uuid REFERENCES sessions (id) ON DELETE SET NULL,
    target_configuration_id uuid REFERENCES configurations (id) ON DELETE SET NULL,
    completion_id text,
    completion_json jsonb,
    completion_artifact_ref text,
    enrichment_json jsonb,
    enrichment_artifact_ref text,
    summary text,
    error_code text,
    error_message text,
    assigned_to uuid REFERENCES users (id) ON DELETE SET NULL,
    assigned_at timestamptz,
    resolved_by uuid REFERENCES users (id) ON DELETE SET NULL,
    resolved_at timestamptz,
    resolution_note text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX automation_runs_org_idx ON automation_runs (org_id, created_at DESC);
CREATE INDEX automation_runs_automation_idx ON automation_runs (automation_id, created_at DESC);
CREATE INDEX automation_runs_attention_idx ON automation_runs (org_id, completed_at DESC)
    WHERE status IN ('failed', 'needs_human', 'timed_out');
CREATE INDEX automation_runs_active_idx ON automation_runs (status, last_activity_at)
    WHERE status IN ('queued', 'enriching', 'ready', 'running');
CREATE INDEX automation_runs_session_idx ON automation_runs (session_id) WHERE session_id IS NOT NULL;

CREATE TABLE automation_run_events (
    id bigserial PRIMARY KEY,
    run_id uuid NOT NULL REFERENCES automation_runs (id) ON DELETE CASCADE,
    type text NOT NULL,
    from_status text,
    to_status text,
    data jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX automation_run_events_run_idx ON automation_run_events (run_id, id);

CREATE TABLE automation_side_effects (
    id bigserial PRIMARY KEY,
    run_id uuid REFERENCES automation_runs (id) ON DELETE SET NULL,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    effect_id text NOT NULL,
    kind text NOT NULL,
    provider text NOT NULL,
    request_hash text NOT NULL,
    -- 'started' is written (and committed) before the call: a row that stays 'started'
    -- means the outcome is unknown, and the effect is never attempted again.
    status text NOT NULL CHECK (status IN ('started', 'completed')),
    response_json jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    UNIQUE (org_id, effect_id)
);

CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    run_id uuid REFERENCES automation_runs (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN
        ('enqueue_enrich', 'enqueue_execute', 'write_artifacts', 'notify_run_terminal')),
    payload jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'dispatched', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    available_at timestamptz NOT NULL DEFAULT now(),
    claimed_at timestamptz,
    claimed_by text,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    dispatched_at timestamptz
);
CREATE INDEX outbox_due_idx ON outbox (available_at, id) WHERE status = 'pending';
CREATE INDEX outbox_processing_idx ON outbox (claimed_at) WHERE status = 'processing';
CREATE INDEX outbox_run_idx ON outbox (run_id);

CREATE TABLE schedules (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    automation_id uuid NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    -- The hidden trigger the schedule's firings are recorded on.
    trigger_id uuid NOT NULL UNIQUE REFERENCES triggers (id) ON DELETE CASCADE,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    name text NOT NULL DEFAULT '',
    cron_expression text NOT NULL,
    timezone text NOT NULL DEFAULT 'UTC',
    enabled boolean NOT NULL DEFAULT true,
    last_run_at timestamptz,
    next_run_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedules_org_idx ON schedules (org_id, created_at DESC);
CREATE INDEX schedules_due_idx ON schedules (next_run_at) WHERE enabled;
