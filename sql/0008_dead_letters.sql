-- Messages a pool gave up on (malformed, unknown target, or out of deliveries), kept until
-- someone of their org replays them. One row per (consumer, stream message): a redelivery
-- of the same message stores nothing new; a replayed message that fails again is a new row.
CREATE TABLE dead_letters (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- NULL when the message names no org Warren knows (visible to operators only, on NATS).
    org_id uuid REFERENCES orgs (id) ON DELETE CASCADE,
    consumer text NOT NULL,
    reason text NOT NULL,
    detail text NOT NULL,
    subject text NOT NULL,
    stream text NOT NULL,
    stream_seq bigint NOT NULL,
    num_delivered integer NOT NULL,
    data bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    replayed_at timestamptz,
    replayed_by uuid REFERENCES users (id) ON DELETE SET NULL,
    UNIQUE (consumer, stream, stream_seq)
);
CREATE INDEX dead_letters_org_idx ON dead_letters (org_id, created_at DESC);
