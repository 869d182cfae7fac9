-- Agents: `tako agent` processes on other machines, with the environments
-- and roles an admin gave them (newline-joined, sorted), and the single-use
-- enrollment tokens they exchange for their own credential. Credentials and
-- tokens are SHA-256 hashes.
CREATE TABLE agents (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    -- lowercase name: names are unique without regard to case
    name_key TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'disabled')),
    environments TEXT NOT NULL,
    roles TEXT NOT NULL,
    credential_hash BLOB NOT NULL UNIQUE,
    version TEXT,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER
);

CREATE TABLE agent_enrollment_tokens (
    id INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    name TEXT,
    environments TEXT NOT NULL,
    roles TEXT NOT NULL,
    auto_approve INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    -- the agent it enrolled (cleared when that agent is removed)
    agent_id INTEGER REFERENCES agents (id)
);
