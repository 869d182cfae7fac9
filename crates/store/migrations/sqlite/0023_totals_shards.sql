-- The totals gain a shard (PostgreSQL spreads each total over a few rows so
-- that concurrent transactions, the intake's batches and every node's
-- router and scheduler, do not all wait for one row lock; a total is the
-- sum of its shards). SQLite has one writer: every total stays in shard 0,
-- and the column is here so both stores have the same tables (tako admin
-- migrate copies them as they are).
ALTER TABLE totals ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;
