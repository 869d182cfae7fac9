-- Deployment freezes (journey §5): an environment (of one project or of
-- every project) frozen from one instant to another, or every week by a
-- rule (`sat,sun 00:00-24:00`, UTC). Times are milliseconds since the
-- epoch. A deployment made automatically into a frozen environment is
-- stored with the state 'held' (no column of its own).
CREATE TABLE freezes (
    id INTEGER PRIMARY KEY,
    environment TEXT NOT NULL,
    environment_key TEXT NOT NULL,
    project_id INTEGER REFERENCES projects (id) ON DELETE CASCADE,
    starts_at INTEGER,
    ends_at INTEGER,
    weekly TEXT,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    CHECK ((weekly IS NULL) = (starts_at IS NOT NULL AND ends_at IS NOT NULL))
);
-- The sweep releasing held deployments finds them without scanning.
CREATE INDEX deployments_held ON deployments (id) WHERE state = 'held';
