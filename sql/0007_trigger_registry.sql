-- Webhook route per trigger (from the provider registry at creation), so the API shows the
-- delivery URL without the store knowing providers; rows before this migration get the
-- route their provider had.
ALTER TABLE triggers ADD COLUMN webhook_route text;
UPDATE triggers SET webhook_route = CASE provider WHEN 'webhook' THEN 'custom' ELSE provider END
 WHERE webhook_url_path IS NOT NULL;

-- What went wrong the last time the scheduler fired or polled the trigger (a bad cron, a
-- failed poll), shown in the API; cleared by the next success. consecutive_errors backs
-- polls off.
ALTER TABLE triggers
    ADD COLUMN last_error text,
    ADD COLUMN last_error_at timestamptz,
    ADD COLUMN consecutive_errors integer NOT NULL DEFAULT 0;
