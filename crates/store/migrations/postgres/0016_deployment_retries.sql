-- `tako deploy retry`: a deployment made to retry another one names it, and
-- whether it starts at the failed step (carrying the earlier steps over).
ALTER TABLE deployments ADD COLUMN retry_of BIGINT REFERENCES deployments (id) ON DELETE SET NULL;
ALTER TABLE deployments ADD COLUMN retry_from_failed_step BOOLEAN NOT NULL DEFAULT FALSE;
