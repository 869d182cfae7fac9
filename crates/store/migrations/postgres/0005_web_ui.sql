-- What the web UI reads on every page, kept cheap at any history size.

-- The latest deployment of each project and environment (the dashboard's
-- cells), kept by a trigger so the dashboard never scans the history.
CREATE TABLE latest_deployments (
    project_id BIGINT NOT NULL REFERENCES projects (id),
    environment TEXT NOT NULL,
    deployment_id BIGINT NOT NULL REFERENCES deployments (id),
    PRIMARY KEY (project_id, environment)
);

INSERT INTO latest_deployments (project_id, environment, deployment_id)
    SELECT project_id, environment, max(id) FROM deployments GROUP BY project_id, environment;

CREATE FUNCTION deployments_latest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO latest_deployments (project_id, environment, deployment_id)
        VALUES (NEW.project_id, NEW.environment, NEW.id)
        ON CONFLICT (project_id, environment) DO UPDATE
            SET deployment_id = excluded.deployment_id
            WHERE excluded.deployment_id > latest_deployments.deployment_id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER deployments_latest AFTER INSERT ON deployments
    FOR EACH ROW EXECUTE FUNCTION deployments_latest();

-- A release's deployments per environment (project and release pages).
CREATE INDEX deployments_by_release ON deployments (release_id, environment, id);
