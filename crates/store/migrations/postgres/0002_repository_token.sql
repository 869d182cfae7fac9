-- The HTTPS token for fetching a private repository (sealed like
-- webhook_secret).
ALTER TABLE projects ADD COLUMN repository_token TEXT;
