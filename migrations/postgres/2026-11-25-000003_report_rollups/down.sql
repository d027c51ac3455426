DROP INDEX responses_unit_form_idx;
DROP TABLE rollup_scores;
DROP TABLE rollups_procedure;
DROP TABLE rollups_monthly;
