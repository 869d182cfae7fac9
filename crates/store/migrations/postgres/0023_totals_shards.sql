-- Each total is spread over up to 16 rows (shards), the sum of which is
-- the total: a transaction adds to the shard of its connection
-- (pg_backend_pid() % 16), so concurrent transactions (the intake's
-- batches, every node's router and scheduler) rarely wait for the same row
-- lock until they commit, as they all did on the one row per total.
ALTER TABLE totals ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;
ALTER TABLE totals DROP CONSTRAINT totals_pkey;
ALTER TABLE totals ADD PRIMARY KEY (name, label, shard);

CREATE OR REPLACE FUNCTION totals_shard() RETURNS INTEGER
LANGUAGE sql STABLE AS $$
    SELECT pg_backend_pid() % 16;
$$;

CREATE OR REPLACE FUNCTION totals_add(total_name TEXT, total_label TEXT, delta BIGINT) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO totals (name, label, shard, value)
        VALUES (total_name, total_label, totals_shard(), delta)
        ON CONFLICT (name, label, shard) DO UPDATE SET value = totals.value + excluded.value;
$$;

CREATE OR REPLACE FUNCTION totals_deliveries_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO totals (name, label, shard, value)
        SELECT 'deliveries', delivery_total_label(state, outcome), totals_shard(), count(*)
        FROM inserted GROUP BY 2
        ON CONFLICT (name, label, shard) DO UPDATE SET value = totals.value + excluded.value;
    RETURN NULL;
END;
$$;
