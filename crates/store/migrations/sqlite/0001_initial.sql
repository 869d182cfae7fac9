-- Tako's first schema. Times are unix milliseconds (INTEGER); ids are
-- INTEGER PRIMARY KEYs except deliveries, keyed by GitHub's delivery id.

CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    -- lowercase name: names are unique without regard to case
    name_key TEXT NOT NULL UNIQUE,
    repository_url TEXT NOT NULL,
    -- normalize_repository_url(repository_url)
    repository_key TEXT NOT NULL UNIQUE,
    -- sealed by seal_secret (stored as given until encryption at rest)
    webhook_secret TEXT,
    build_counter INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE releases (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects (id),
    number TEXT NOT NULL,
    notes TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    branch TEXT,
    pusher TEXT,
    takofile TEXT NOT NULL,
    variables TEXT NOT NULL,
    build_number INTEGER,
    created_at INTEGER NOT NULL,
    UNIQUE (project_id, number)
);
CREATE INDEX releases_by_project ON releases (project_id, id);

CREATE TABLE deployments (
    id INTEGER PRIMARY KEY,
    release_id INTEGER NOT NULL REFERENCES releases (id),
    project_id INTEGER NOT NULL REFERENCES projects (id),
    environment TEXT NOT NULL,
    state TEXT NOT NULL,
    queued_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    claimed_by TEXT,
    lease_until INTEGER,
    log_lines INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX deployments_queued ON deployments (id) WHERE state = 'queued';
CREATE INDEX deployments_running ON deployments (project_id, environment) WHERE state = 'running';
CREATE INDEX deployments_by_project ON deployments (project_id, id);

CREATE TABLE deployment_steps (
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    step_index INTEGER NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    started_at INTEGER,
    duration_ms INTEGER,
    PRIMARY KEY (deployment_id, step_index)
);

-- The task log in chunks: one row holds up to 1,000 encoded lines.
CREATE TABLE log_chunks (
    id INTEGER PRIMARY KEY,
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    first_line INTEGER NOT NULL,
    line_count INTEGER NOT NULL,
    data BLOB NOT NULL,
    UNIQUE (deployment_id, first_line)
);

CREATE TABLE deliveries (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    event TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    body BLOB NOT NULL,
    repository_url TEXT,
    repository_key TEXT,
    git_ref TEXT,
    project_id INTEGER REFERENCES projects (id),
    state TEXT NOT NULL DEFAULT 'pending',
    outcome TEXT,
    outcome_reason TEXT,
    release_id INTEGER REFERENCES releases (id),
    deployment_id INTEGER REFERENCES deployments (id),
    claimed_by TEXT,
    lease_until INTEGER,
    completed_at INTEGER
);
CREATE INDEX deliveries_pending ON deliveries (seq) WHERE state = 'pending';
CREATE INDEX deliveries_by_repository ON deliveries (repository_key, seq);
CREATE INDEX deliveries_by_project ON deliveries (project_id, seq);

CREATE TABLE variables (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects (id),
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    -- sorted environment names joined by a newline; empty for all
    scope TEXT NOT NULL,
    value TEXT NOT NULL,
    sensitive INTEGER NOT NULL,
    UNIQUE (project_id, name_key, scope)
);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    hash BLOB NOT NULL UNIQUE,
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    expires_at INTEGER,
    revoked INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
