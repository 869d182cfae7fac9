-- Agents (issue 13): a step with `Roles` and `Retries` gives each agent a new
-- job per attempt; the attempt's number tells them apart.
ALTER TABLE jobs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;

-- Project variables scoped to target roles (Octopus's role scope): sorted
-- role names joined by a newline, empty for every step. A name may have one
-- value per environment scope and role scope, so the unique key gains the
-- roles: SQLite cannot change a table's constraint, so the table is rebuilt
-- (ids kept; nothing refers to it).
CREATE TABLE variables_with_roles (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects (id),
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    -- sorted environment names joined by a newline; empty for all
    scope TEXT NOT NULL,
    value TEXT NOT NULL,
    sensitive INTEGER NOT NULL,
    roles TEXT NOT NULL DEFAULT '',
    UNIQUE (project_id, name_key, scope, roles)
);
INSERT INTO variables_with_roles (id, project_id, name, name_key, scope, value, sensitive, roles)
    SELECT id, project_id, name, name_key, scope, value, sensitive, '' FROM variables;
DROP TABLE variables;
ALTER TABLE variables_with_roles RENAME TO variables;
