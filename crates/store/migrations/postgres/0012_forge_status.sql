-- Reporting deployments back to the forge as commit statuses: the project's
-- status token (sealed like its other secrets), the forge it is on when its
-- repository URL does not say, and the forge's API base URL (GitHub
-- Enterprise, a self-hosted Gitea or GitLab; a stand-in in tests).
ALTER TABLE projects ADD COLUMN status_token TEXT;
ALTER TABLE projects ADD COLUMN status_forge TEXT;
ALTER TABLE projects ADD COLUMN status_api_url TEXT;
