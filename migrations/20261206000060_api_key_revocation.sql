-- API keys can be revoked (issue 17): a revoked key keeps its row, for the audit log's key
-- names and for listing, and stops authenticating. Existing keys stay active (NULL).
ALTER TABLE api_keys ADD COLUMN revoked_at timestamptz;
