DROP TRIGGER releases_immutable_delete;
DROP TRIGGER releases_immutable_update;
DROP INDEX releases_created_idx;
DROP TABLE releases;
