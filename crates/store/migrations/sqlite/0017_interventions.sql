-- A deployment that waits for a person (`Uses: manual-intervention`, or a
-- failed step with `OnFailure: ask`) is `paused`; each pause is a row here,
-- answered once (proceed, retry, ignore or abort) by a person with a note.
-- At most one unanswered pause per deployment.
CREATE TABLE deployment_interventions (
    id INTEGER PRIMARY KEY,
    deployment_id INTEGER NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    step_index INTEGER NOT NULL,
    step_name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('manual', 'failure')),
    instructions TEXT NOT NULL,
    roles TEXT NOT NULL,
    paused_at INTEGER NOT NULL,
    answered_by TEXT,
    answered_role TEXT,
    action TEXT CHECK (action IN ('proceed', 'retry', 'ignore', 'abort')),
    note TEXT,
    answered_at INTEGER
);
CREATE INDEX deployment_interventions_of ON deployment_interventions (deployment_id);
CREATE UNIQUE INDEX deployment_interventions_open
    ON deployment_interventions (deployment_id) WHERE answered_at IS NULL;
