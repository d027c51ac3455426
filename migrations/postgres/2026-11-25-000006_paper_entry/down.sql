ALTER TABLE responses DROP COLUMN provenance;
DROP TABLE paper_entries;
DROP TABLE paper_forms;
DROP TABLE paper_batches;
