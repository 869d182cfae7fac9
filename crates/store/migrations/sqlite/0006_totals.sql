-- Totals for /metrics, kept by triggers so a scrape costs the same at any
-- history size: deliveries by outcome, deployments by state, and finished
-- steps (count and milliseconds) by state.
CREATE TABLE totals (
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (name, label)
) WITHOUT ROWID;

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

CREATE TRIGGER totals_delivery_insert AFTER INSERT ON deliveries BEGIN
    INSERT INTO totals (name, label, value)
        VALUES ('deliveries', CASE WHEN NEW.state = 'pending' THEN 'pending'
                                   ELSE coalesce(NEW.outcome, 'pending') END, 1)
        ON CONFLICT (name, label) DO UPDATE SET value = value + 1;
END;

CREATE TRIGGER totals_delivery_update AFTER UPDATE OF state, outcome ON deliveries BEGIN
    UPDATE totals SET value = value - 1
        WHERE name = 'deliveries'
          AND label = CASE WHEN OLD.state = 'pending' THEN 'pending'
                           ELSE coalesce(OLD.outcome, 'pending') END;
    INSERT INTO totals (name, label, value)
        VALUES ('deliveries', CASE WHEN NEW.state = 'pending' THEN 'pending'
                                   ELSE coalesce(NEW.outcome, 'pending') END, 1)
        ON CONFLICT (name, label) DO UPDATE SET value = value + 1;
END;

CREATE TRIGGER totals_deployment_insert AFTER INSERT ON deployments BEGIN
    INSERT INTO totals (name, label, value) VALUES ('deployments', NEW.state, 1)
        ON CONFLICT (name, label) DO UPDATE SET value = value + 1;
END;

CREATE TRIGGER totals_deployment_update AFTER UPDATE OF state ON deployments
    WHEN OLD.state IS NOT NEW.state BEGIN
    UPDATE totals SET value = value - 1 WHERE name = 'deployments' AND label = OLD.state;
    INSERT INTO totals (name, label, value) VALUES ('deployments', NEW.state, 1)
        ON CONFLICT (name, label) DO UPDATE SET value = value + 1;
END;

CREATE TRIGGER totals_step_insert AFTER INSERT ON deployment_steps
    WHEN NEW.duration_ms IS NOT NULL BEGIN
    INSERT INTO totals (name, label, value) VALUES ('steps', NEW.state, 1)
        ON CONFLICT (name, label) DO UPDATE SET value = value + 1;
    INSERT INTO totals (name, label, value) VALUES ('step_ms', NEW.state, NEW.duration_ms)
        ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER totals_step_update AFTER UPDATE OF duration_ms, state ON deployment_steps BEGIN
    UPDATE totals SET value = value - 1
        WHERE OLD.duration_ms IS NOT NULL AND name = 'steps' AND label = OLD.state;
    UPDATE totals SET value = value - OLD.duration_ms
        WHERE OLD.duration_ms IS NOT NULL AND name = 'step_ms' AND label = OLD.state;
    INSERT INTO totals (name, label, value)
        SELECT 'steps', NEW.state, 1 WHERE NEW.duration_ms IS NOT NULL
        ON CONFLICT (name, label) DO UPDATE SET value = value + 1;
    INSERT INTO totals (name, label, value)
        SELECT 'step_ms', NEW.state, NEW.duration_ms WHERE NEW.duration_ms IS NOT NULL
        ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value;
END;

-- Listing deployments by environment or state without scanning the history.
CREATE INDEX deployments_by_environment ON deployments (project_id, environment, id);
CREATE INDEX deployments_by_state ON deployments (state, id);
