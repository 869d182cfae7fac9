-- Jobs: one agent's run of one step. The specification and the outputs may
-- hold sensitive values: sealed like every secret. `stored_seq` is the
-- highest log chunk stored without a gap (chunks are appended to the
-- deployment's task log in order, each once).
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    step_index INTEGER NOT NULL,
    step_name TEXT NOT NULL,
    agent_id INTEGER NOT NULL,
    agent_name TEXT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('pending', 'running', 'success', 'failed', 'cancelled', 'interrupted')),
    spec TEXT NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    stored_seq INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    outputs TEXT,
    duration_ms INTEGER,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    lease_until INTEGER
);
CREATE INDEX jobs_pending_by_agent ON jobs (agent_id, created_at) WHERE state = 'pending';
CREATE INDEX jobs_running ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_by_deployment ON jobs (deployment_id, step_index);
