-- Cluster §3, the twin of SQLite's 0020: the cache generation (what a node
-- caches in memory carries it; every change to projects, policies and
-- tokens raises it) and the wake-ups: NOTIFY on channel `tako_wakeup` when
-- deliveries are stored, a deployment is queued or leaves `running` (its
-- environment's queue may move), a cancel is requested, log lines are
-- stored, a job is created for an agent, or the generation moves. Every
-- node LISTENs; each also polls, so a lost notification costs latency,
-- never correctness. PostgreSQL folds identical notifications of one
-- transaction into one.
CREATE TABLE cache_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO cache_generation (id, value) VALUES (1, 0);

CREATE FUNCTION tako_cache_generation_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cache_generation SET value = value + 1 WHERE id = 1;
    PERFORM pg_notify('tako_wakeup', 'caches');
    RETURN NULL;
END;
$$;
CREATE TRIGGER cache_generation_projects AFTER INSERT OR DELETE ON projects
    FOR EACH STATEMENT EXECUTE FUNCTION tako_cache_generation_bump();
CREATE TRIGGER cache_generation_projects_update
    AFTER UPDATE OF name, repository_url, webhook_secret, repository_token, status_token,
        status_forge, status_api_url, status_deployments ON projects
    FOR EACH STATEMENT EXECUTE FUNCTION tako_cache_generation_bump();
CREATE TRIGGER cache_generation_policies AFTER INSERT OR UPDATE OR DELETE ON environment_policies
    FOR EACH STATEMENT EXECUTE FUNCTION tako_cache_generation_bump();
CREATE TRIGGER cache_generation_tokens AFTER INSERT OR DELETE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION tako_cache_generation_bump();
CREATE TRIGGER cache_generation_tokens_update AFTER UPDATE OF role, expires_at, revoked ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION tako_cache_generation_bump();

CREATE FUNCTION tako_wakeup_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tako_wakeup', 'deliveries');
    RETURN NULL;
END;
$$;
CREATE TRIGGER wakeup_deliveries AFTER INSERT ON deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION tako_wakeup_deliveries();

CREATE FUNCTION tako_wakeup_deployments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'queued' AND (TG_OP = 'INSERT' OR OLD.state <> 'queued') THEN
        PERFORM pg_notify('tako_wakeup', 'deployments');
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.state = 'running' AND NEW.state <> 'running' THEN
        PERFORM pg_notify('tako_wakeup', 'deployments');
    END IF;
    IF NEW.cancel_requested AND (TG_OP = 'INSERT' OR NOT OLD.cancel_requested) THEN
        PERFORM pg_notify('tako_wakeup', 'cancel:' || NEW.id);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER wakeup_deployments AFTER INSERT OR UPDATE OF state, cancel_requested ON deployments
    FOR EACH ROW EXECUTE FUNCTION tako_wakeup_deployments();

CREATE FUNCTION tako_wakeup_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tako_wakeup', 'log:' || NEW.deployment_id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER wakeup_log AFTER INSERT ON log_chunks
    FOR EACH ROW EXECUTE FUNCTION tako_wakeup_log();

CREATE FUNCTION tako_wakeup_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tako_wakeup', 'jobs');
    RETURN NULL;
END;
$$;
CREATE TRIGGER wakeup_jobs AFTER INSERT ON jobs
    FOR EACH STATEMENT EXECUTE FUNCTION tako_wakeup_jobs();
