-- One running deployment per project and environment, enforced by the
-- schema and not only by the claim's query: a second running row for the
-- same project and environment (as the claim compares them: exactly) is
-- refused by the database, whichever node or query tries.
DROP INDEX deployments_running;
CREATE UNIQUE INDEX deployments_one_running
    ON deployments (project_id, environment) WHERE state = 'running';
