-- Why the scheduler took a schedule off (a cron or time zone that no longer parses), shown
-- in the API; cleared when the user edits the cron, time zone or enabled flag.
ALTER TABLE schedules
    ADD COLUMN last_error text,
    ADD COLUMN last_error_at timestamptz;

-- Replicas cache webhook targets (api/webhook_targets.py) and empty the cache on this
-- notification: sent when a webhook trigger's path, route, secret, provider, config or
-- visibility changes, or it is deleted (delivered on commit).
CREATE FUNCTION warren_notify_webhook_target() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('warren_webhook_targets', '');
    RETURN NULL;
END $$;

CREATE TRIGGER triggers_webhook_target_changed
    AFTER UPDATE OF webhook_url_path, webhook_route, webhook_secret_sealed, provider, config,
        hidden OR DELETE ON triggers
    FOR EACH ROW WHEN (OLD.webhook_url_path IS NOT NULL)
    EXECUTE FUNCTION warren_notify_webhook_target();
