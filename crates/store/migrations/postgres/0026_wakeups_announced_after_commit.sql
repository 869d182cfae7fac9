-- Stored deliveries and appended log lines are announced to every node by
-- a NOTIFY of its own, sent after the write has committed
-- (postgres/announce.rs), no longer by these triggers inside the write's
-- transaction: PostgreSQL holds one lock for the commit of every notifying
-- transaction, WAL flush included, so the intake's batches committed on
-- several connections at once, and the log appends of every running
-- deployment, waited for each other's flush instead of sharing one.
DROP TRIGGER wakeup_deliveries ON deliveries;
DROP FUNCTION tako_wakeup_deliveries();
DROP TRIGGER wakeup_log ON log_chunks;
DROP FUNCTION tako_wakeup_log();
