-- Forwarding pushes to an Octopus Deploy server (octopus-forward.md): a
-- deployment's kind ('tako' or 'octopus'), a forwarded deployment's progress
-- as JSON, and a delivery's warnings (a JSON array of strings).
ALTER TABLE deployments ADD COLUMN kind TEXT NOT NULL DEFAULT 'tako';
ALTER TABLE deployments ADD COLUMN forward TEXT;
ALTER TABLE deliveries ADD COLUMN warnings TEXT;
