DROP TRIGGER releases_immutable ON releases;
DROP FUNCTION releases_immutable();
DROP INDEX releases_created_idx;
DROP TABLE releases;
