-- Cluster §3: what a node may cache in memory (the webhook secret index,
-- projects, policies, tokens) carries a generation read from here; every
-- change to those tables raises it, so a node that sees a new number
-- reloads. (SQLite serves one node: the number is kept the same way so
-- both stores answer alike.) A build counter or a token's last use is no
-- change to what is cached.
CREATE TABLE cache_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO cache_generation (id, value) VALUES (1, 0);

CREATE TRIGGER cache_generation_projects_insert AFTER INSERT ON projects
BEGIN UPDATE cache_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER cache_generation_projects_delete AFTER DELETE ON projects
BEGIN UPDATE cache_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER cache_generation_projects_update
AFTER UPDATE OF name, repository_url, webhook_secret, repository_token, status_token, status_forge,
    status_api_url, status_deployments ON projects
BEGIN UPDATE cache_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER cache_generation_policies_insert AFTER INSERT ON environment_policies
BEGIN UPDATE cache_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER cache_generation_policies_delete AFTER DELETE ON environment_policies
BEGIN UPDATE cache_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER cache_generation_policies_update AFTER UPDATE ON environment_policies
BEGIN UPDATE cache_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER cache_generation_tokens_insert AFTER INSERT ON api_tokens
BEGIN UPDATE cache_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER cache_generation_tokens_delete AFTER DELETE ON api_tokens
BEGIN UPDATE cache_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER cache_generation_tokens_update
AFTER UPDATE OF role, expires_at, revoked ON api_tokens
BEGIN UPDATE cache_generation SET value = value + 1 WHERE id = 1; END;
