-- How each delivery's body is kept: 'plain' (as it came) or 'lz4' (LZ4
-- block, its length first; crates/store/src/body_codec.rs). PostgreSQL
-- stores its own bodies 'plain' (TOAST compresses them, migration 0024);
-- the column keeps the codec of rows copied from SQLite by
-- `tako admin migrate`, which compresses its bodies.
ALTER TABLE deliveries ADD COLUMN body_codec TEXT NOT NULL DEFAULT 'plain'
    CHECK (body_codec IN ('plain', 'lz4'));
