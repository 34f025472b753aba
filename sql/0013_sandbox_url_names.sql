-- Names that say what they point at: agent_url was OpenCode's URL, tools_url the in-sandbox agent's.
ALTER TABLE sessions RENAME COLUMN agent_url TO opencode_url;
ALTER TABLE sessions RENAME COLUMN tools_url TO sandbox_agent_url;
