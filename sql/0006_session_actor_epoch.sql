-- Each incarnation of a session's actor claims the next epoch at start-up. The event log is
-- fenced on JetStream's expected last subject sequence; when a publish is refused, the
-- actor compares its epoch with this one to learn whether it is the live incarnation (it
-- re-reads the sequence and goes on) or a zombie (it stops publishing).
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS actor_epoch bigint NOT NULL DEFAULT 0;
