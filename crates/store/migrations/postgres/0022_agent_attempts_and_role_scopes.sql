-- Agents (issue 13): a step with `Roles` and `Retries` gives each agent a new
-- job per attempt; the attempt's number tells them apart.
ALTER TABLE jobs ADD COLUMN attempt BIGINT NOT NULL DEFAULT 1;

-- Project variables scoped to target roles (Octopus's role scope): sorted
-- role names joined by a newline, empty for every step. A name may have one
-- value per environment scope and role scope, so the unique key gains the
-- roles.
ALTER TABLE variables ADD COLUMN roles TEXT NOT NULL DEFAULT '';
ALTER TABLE variables DROP CONSTRAINT variables_project_id_name_key_scope_key;
ALTER TABLE variables ADD CONSTRAINT variables_project_id_name_key_scope_roles_key
    UNIQUE (project_id, name_key, scope, roles);
