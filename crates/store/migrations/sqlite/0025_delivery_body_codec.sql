-- How each delivery's body is kept: 'plain' (as it came) or 'lz4' (LZ4
-- block, its length first; crates/store/src/body_codec.rs). From this
-- version on SQLite compresses pushes: a row then fits its page instead of
-- spilling into overflow pages, and each commit writes fewer WAL bytes.
-- Bodies already stored stay 'plain'.
ALTER TABLE deliveries ADD COLUMN body_codec TEXT NOT NULL DEFAULT 'plain'
    CHECK (body_codec IN ('plain', 'lz4'));
