-- Retention (journey §6): old releases, task logs, deliveries and audit
-- entries are removed in small batches. What each batch looks for is served
-- by an index, and the foreign keys checked when a deployment or a release
-- goes are indexed too, so a batch never scans the history.

-- When retention removed a deployment's task log (its steps stay).
ALTER TABLE deployments ADD COLUMN log_removed_at BIGINT;
-- Finished deployments whose task log is still kept, oldest end first.
CREATE INDEX deployments_log_kept ON deployments (project_id, finished_at)
    WHERE log_removed_at IS NULL AND finished_at IS NOT NULL;
-- The newest releases deployed to each environment (the releases kept).
CREATE INDEX deployments_by_environment_release ON deployments (project_id, environment, release_id);
-- Foreign keys to a removed release or deployment.
CREATE INDEX deployments_by_retry_of ON deployments (retry_of);
CREATE INDEX deliveries_by_release ON deliveries (release_id);
CREATE INDEX deliveries_by_deployment ON deliveries (deployment_id);
-- Old deliveries and audit entries, oldest first.
CREATE INDEX deliveries_by_project_received ON deliveries (project_id, received_at);
CREATE INDEX audit_log_by_time ON audit_log (at);

-- The audit log stays append-only to everyone but retention: a row may be
-- deleted only in a transaction that set `tako.audit_retention` (SET LOCAL,
-- which retention's own transaction does); updates and TRUNCATE are refused.
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND coalesce(current_setting('tako.audit_retention', true), '') = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
