-- Forwarding pushes to an Octopus Deploy server (octopus-forward.md).
-- A deployment's kind: 'tako' (Tako runs the process) or 'octopus' (an
-- Octopus server runs it, Tako follows its task); a forwarded deployment's
-- progress and outcome as JSON (the IDs Octopus gave, stored before the
-- next call, so a restart resumes without creating anything twice).
ALTER TABLE deployments ADD COLUMN kind TEXT NOT NULL DEFAULT 'tako';
ALTER TABLE deployments ADD COLUMN forward TEXT;
-- Warnings about a delivery (a takofile Server that is not allow-listed,
-- takofile keys ignored when forwarding), as a JSON array of strings.
ALTER TABLE deliveries ADD COLUMN warnings TEXT;
