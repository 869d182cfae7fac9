-- The commit a push delivery moved its ref to (`after`), so the missed-push
-- sweep can tell which branch heads Tako has seen and which push it last
-- processed for a ref; and whether the sweep made the delivery (a push
-- Tako missed while it was down, recovered from the remote's heads).
ALTER TABLE deliveries ADD COLUMN after_sha TEXT;
ALTER TABLE deliveries ADD COLUMN recovered INTEGER NOT NULL DEFAULT 0;
-- Deliveries stored before this version: `after` from their stored push
-- (every push body is JSON with `after`).
UPDATE deliveries SET after_sha = json_extract(CAST(body AS TEXT), '$.after')
 WHERE event = 'push' AND json_valid(CAST(body AS TEXT));
CREATE INDEX deliveries_by_ref ON deliveries (repository_key, git_ref, seq);
