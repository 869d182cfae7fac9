-- Jobs: one agent's run of one step. The specification and the outputs may
-- hold sensitive values: sealed like every secret. `stored_seq` is the
-- highest log chunk stored without a gap (chunks are appended to the
-- deployment's task log in order, each once).
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    deployment_id BIGINT NOT NULL REFERENCES deployments (id),
    step_index BIGINT NOT NULL,
    step_name TEXT NOT NULL,
    agent_id BIGINT NOT NULL,
    agent_name TEXT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('pending', 'running', 'success', 'failed', 'cancelled', 'interrupted')),
    spec TEXT NOT NULL,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    stored_seq BIGINT NOT NULL DEFAULT 0,
    reason TEXT,
    outputs TEXT,
    duration_ms BIGINT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    lease_until BIGINT
);
CREATE INDEX jobs_pending_by_agent ON jobs (agent_id, created_at) WHERE state = 'pending';
CREATE INDEX jobs_running ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_by_deployment ON jobs (deployment_id, step_index);
