-- A delivery's body (a push, ~8 KB) is compressed by TOAST when stored.
-- With the default method, pglz, that compression was a fifth of
-- PostgreSQL's CPU during a flood of pushes; lz4 is several times faster
-- (docs/benchmarks.md, "The router a batch at a time"). Bodies already
-- stored keep their method; a server built without lz4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE deliveries ALTER COLUMN body SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this PostgreSQL has no lz4: delivery bodies stay compressed with pglz';
END;
$$;
