-- The commit a push delivery moved its ref to (`after`), so the missed-push
-- sweep can tell which branch heads Tako has seen and which push it last
-- processed for a ref; and whether the sweep made the delivery (a push
-- Tako missed while it was down, recovered from the remote's heads).
--
-- SQLite's 0011 also fills `after` in from the bodies of deliveries stored
-- before it. No PostgreSQL database predates this version (the PostgreSQL
-- store starts at 0013, all migrations in one run), and a copy from SQLite
-- brings `after_sha` with it, so there is nothing to fill in here.
ALTER TABLE deliveries ADD COLUMN after_sha TEXT;
ALTER TABLE deliveries ADD COLUMN recovered BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX deliveries_by_ref ON deliveries (repository_key, git_ref, seq);
