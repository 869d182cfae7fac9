-- Totals for /metrics, kept by triggers so a scrape costs the same at any
-- history size: deliveries by outcome, deployments by state, and finished
-- steps (count and milliseconds) by state.
CREATE TABLE totals (
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (name, label)
);

INSERT INTO totals (name, label, value)
    SELECT 'deliveries', CASE WHEN state = 'pending' THEN 'pending' ELSE coalesce(outcome, 'pending') END,
           count(*)
    FROM deliveries GROUP BY 2;
INSERT INTO totals (name, label, value)
    SELECT 'deployments', state, count(*) FROM deployments GROUP BY state;
INSERT INTO totals (name, label, value)
    SELECT 'steps', state, count(*) FROM deployment_steps WHERE duration_ms IS NOT NULL GROUP BY state;
INSERT INTO totals (name, label, value)
    SELECT 'step_ms', state, sum(duration_ms) FROM deployment_steps WHERE duration_ms IS NOT NULL
    GROUP BY state;

-- Adds `delta` to one total (creating it).
CREATE FUNCTION totals_add(total_name TEXT, total_label TEXT, delta BIGINT) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO totals (name, label, value) VALUES (total_name, total_label, delta)
        ON CONFLICT (name, label) DO UPDATE SET value = totals.value + excluded.value;
$$;

CREATE FUNCTION delivery_total_label(state TEXT, outcome TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN state = 'pending' THEN 'pending' ELSE coalesce(outcome, 'pending') END;
$$;

CREATE FUNCTION totals_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF delivery_total_label(OLD.state, OLD.outcome) = delivery_total_label(NEW.state, NEW.outcome) THEN
            RETURN NULL;
        END IF;
        PERFORM totals_add('deliveries', delivery_total_label(OLD.state, OLD.outcome), -1);
    END IF;
    PERFORM totals_add('deliveries', delivery_total_label(NEW.state, NEW.outcome), 1);
    RETURN NULL;
END;
$$;
-- Inserts are counted once per statement (the intake stores a whole batch
-- in one statement): one update of each total the batch touches.
CREATE FUNCTION totals_deliveries_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO totals (name, label, value)
        SELECT 'deliveries', delivery_total_label(state, outcome), count(*)
        FROM inserted GROUP BY 2
        ON CONFLICT (name, label) DO UPDATE SET value = totals.value + excluded.value;
    RETURN NULL;
END;
$$;
CREATE TRIGGER totals_delivery_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION totals_deliveries_inserted();
CREATE TRIGGER totals_delivery_update AFTER UPDATE OF state, outcome ON deliveries
    FOR EACH ROW EXECUTE FUNCTION totals_delivery();

CREATE FUNCTION totals_deployment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.state IS NOT DISTINCT FROM NEW.state THEN
            RETURN NULL;
        END IF;
        PERFORM totals_add('deployments', OLD.state, -1);
    END IF;
    PERFORM totals_add('deployments', NEW.state, 1);
    RETURN NULL;
END;
$$;
CREATE TRIGGER totals_deployment_insert AFTER INSERT ON deployments
    FOR EACH ROW EXECUTE FUNCTION totals_deployment();
CREATE TRIGGER totals_deployment_update AFTER UPDATE OF state ON deployments
    FOR EACH ROW EXECUTE FUNCTION totals_deployment();

CREATE FUNCTION totals_step() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.duration_ms IS NOT NULL THEN
        PERFORM totals_add('steps', OLD.state, -1);
        PERFORM totals_add('step_ms', OLD.state, -OLD.duration_ms);
    END IF;
    IF NEW.duration_ms IS NOT NULL THEN
        PERFORM totals_add('steps', NEW.state, 1);
        PERFORM totals_add('step_ms', NEW.state, NEW.duration_ms);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER totals_step_insert AFTER INSERT ON deployment_steps
    FOR EACH ROW EXECUTE FUNCTION totals_step();
CREATE TRIGGER totals_step_update AFTER UPDATE OF duration_ms, state ON deployment_steps
    FOR EACH ROW EXECUTE FUNCTION totals_step();

-- Listing deployments by environment or state without scanning the history.
CREATE INDEX deployments_by_environment ON deployments (project_id, environment, id);
CREATE INDEX deployments_by_state ON deployments (state, id);
