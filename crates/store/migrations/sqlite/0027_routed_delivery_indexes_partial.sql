-- The indexes on what a delivery gets when it is routed (its project,
-- release and deployment) leave out the deliveries that have none: every
-- push is stored without them, many never get them (a push no project
-- maps, an ignored branch), and each index entry is written again by the
-- claim and by the completion. Every query on these columns compares them
-- with a value (`=`, `IN`), which implies `IS NOT NULL`, so it still uses
-- the index. Old deliveries of no project are found by
-- deliveries_by_project_received, unchanged.
DROP INDEX deliveries_by_release;
CREATE INDEX deliveries_by_release ON deliveries (release_id) WHERE release_id IS NOT NULL;
DROP INDEX deliveries_by_deployment;
CREATE INDEX deliveries_by_deployment ON deliveries (deployment_id) WHERE deployment_id IS NOT NULL;
DROP INDEX deliveries_by_project;
CREATE INDEX deliveries_by_project ON deliveries (project_id, seq) WHERE project_id IS NOT NULL;
