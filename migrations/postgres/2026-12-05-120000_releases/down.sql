DROP INDEX releases_created_idx;
DROP TABLE releases;
