-- Whether a GitHub project's deployments are also reported as GitHub
-- Deployments (the repository's Environments panel).
ALTER TABLE projects ADD COLUMN status_deployments BOOLEAN NOT NULL DEFAULT FALSE;
