-- Approvals (a lifecycle phase's `Approval`): who made a deployment, the
-- rule it waits on (frozen when it is created), and every approval or
-- rejection given. A deployment awaiting approval is found by its deadline
-- (the timeout sweep) without scanning the history.
ALTER TABLE deployments ADD COLUMN created_by TEXT;
ALTER TABLE deployments ADD COLUMN approval_roles TEXT;
ALTER TABLE deployments ADD COLUMN approvals_required INTEGER;
ALTER TABLE deployments ADD COLUMN approval_not_by TEXT;
ALTER TABLE deployments ADD COLUMN approval_deadline INTEGER;
CREATE INDEX deployments_awaiting_approval
    ON deployments (approval_deadline) WHERE state = 'awaiting_approval';

CREATE TABLE deployment_approvals (
    id INTEGER PRIMARY KEY,
    deployment_id INTEGER NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    by_name TEXT NOT NULL,
    by_role TEXT NOT NULL,
    approve INTEGER NOT NULL,
    note TEXT NOT NULL,
    at INTEGER NOT NULL
);
-- One decision per person and deployment (names compared without case).
CREATE UNIQUE INDEX deployment_approvals_once
    ON deployment_approvals (deployment_id, lower(by_name));
