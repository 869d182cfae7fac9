-- A step's output variables, kept so a deployment resumed after a server
-- restart (its agents' jobs still running) can give them to later steps.
-- They may hold sensitive values: sealed like every secret.
ALTER TABLE deployment_steps ADD COLUMN outputs TEXT;
