-- Repositories a session clones into its sandbox at boot: [{url, branch?, workspace_path}].
ALTER TABLE sessions ADD COLUMN repos jsonb NOT NULL DEFAULT '[]';
