-- Server-side environment policy: which branches may deploy into an
-- environment of a project, whatever the takofile says.
CREATE TABLE environment_policies (
    project_id BIGINT NOT NULL REFERENCES projects (id),
    environment TEXT NOT NULL,
    -- lowercase environment: environments match without regard to case
    environment_key TEXT NOT NULL,
    -- branch globs joined by a newline; empty: no branch may deploy
    allowed_branches TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, environment_key)
);
