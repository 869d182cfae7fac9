-- Stored deliveries are announced to every node by a NOTIFY of its own,
-- sent after the intake's batch has committed (postgres/announce.rs), no
-- longer by this trigger inside the batch's transaction: PostgreSQL holds
-- one lock for the commit of every notifying transaction, WAL flush
-- included, so batches committed on several connections at once waited
-- for each other's flush instead of sharing one.
DROP TRIGGER wakeup_deliveries ON deliveries;
DROP FUNCTION tako_wakeup_deliveries();
