-- A routed batch's totals in one upsert per label, not two per row. The
-- router completes a batch of deliveries in one UPDATE; the row trigger of
-- 0006 then ran totals_add twice for each row (64 upserts for 32 rows),
-- which took most of that UPDATE's time (measured with
-- pg_stat_statements: 3.0 s of the 4.4 s a 20,000-push burst's
-- completions took). This statement trigger sums the batch's changes by
-- label from its transition tables and writes each label once.
--
-- PostgreSQL refuses a column list on a trigger with transition tables, so
-- it fires after every UPDATE of deliveries; an update that changes no
-- label (a claim, a warning) nets to zero and writes nothing.
DROP TRIGGER totals_delivery_update ON deliveries;
DROP FUNCTION totals_delivery();

CREATE FUNCTION totals_deliveries_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO totals (name, label, shard, value)
        SELECT 'deliveries', label, totals_shard(), sum(delta)
        FROM (SELECT delivery_total_label(state, outcome) AS label, -1 AS delta FROM before_update
              UNION ALL
              SELECT delivery_total_label(state, outcome), 1 FROM after_update) AS changes
        GROUP BY label
        HAVING sum(delta) <> 0
        ON CONFLICT (name, label, shard) DO UPDATE SET value = totals.value + excluded.value;
    RETURN NULL;
END;
$$;
CREATE TRIGGER totals_deliveries_update AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS before_update NEW TABLE AS after_update
    FOR EACH STATEMENT EXECUTE FUNCTION totals_deliveries_updated();
