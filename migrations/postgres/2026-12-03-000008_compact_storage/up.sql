-- Compact storage for ten million responses and more:
-- * answers move into one JSON object on the response row (one insert per response, not ~30);
-- * rollups become one row per cell (unit, form version, local month, channel, respondent type;
--   and unit, form version, month, procedure) holding every count of the cell in one compact
--   value: a row per (cell, question, level) made them larger than the raw answers once a
--   province has hundreds of units. There are no daily rollups: the partial months at the edges
--   of a custom range are counted from the responses of those days only. The new cells are
--   filled from the stored responses at the next start (local months need the UTC offset);
-- * dossier counts of the Decision 766 rate get monthly rollups, so rankings never scan dossiers.
--   They are filled from the stored dossiers at the next start (the local month needs the
--   province's UTC offset, a setting the migration cannot see).

ALTER TABLE responses ADD COLUMN answers TEXT NOT NULL DEFAULT '{}';

UPDATE responses SET answers = a.object
FROM (
    SELECT response_id, json_object_agg(
        question_code,
        CASE
            WHEN value_int IS NOT NULL AND value_text IS NOT NULL THEN json_build_array(value_int, value_text)
            WHEN value_int IS NOT NULL THEN to_json(value_int)
            ELSE to_json(value_text)
        END)::text AS object
    FROM answers GROUP BY response_id
) a
WHERE a.response_id = responses.id;

DROP TABLE answers;
DROP TABLE rollups;
DROP TABLE rollups_monthly;
DROP TABLE rollups_procedure;
DROP TABLE rollup_scores;

CREATE TABLE rollup_cells (
    unit_id TEXT NOT NULL REFERENCES units(id),
    form_code TEXT NOT NULL,
    form_version BIGINT NOT NULL,
    month DATE NOT NULL,
    channel TEXT NOT NULL,
    respondent_type TEXT NOT NULL,
    responses BIGINT NOT NULL,
    counts BYTEA NOT NULL,
    -- Month before version: a unit's report is one range of this key.
    PRIMARY KEY (unit_id, form_code, month, form_version, channel, respondent_type)
);
-- The province ranking reads one period of every unit.
CREATE INDEX rollup_cells_form_month_idx ON rollup_cells(form_code, month);

CREATE TABLE rollup_procedure_cells (
    unit_id TEXT NOT NULL REFERENCES units(id),
    form_code TEXT NOT NULL,
    form_version BIGINT NOT NULL,
    month DATE NOT NULL,
    procedure_id TEXT NOT NULL,
    responses BIGINT NOT NULL,
    counts BYTEA NOT NULL,
    PRIMARY KEY (unit_id, form_code, month, procedure_id, form_version)
);

CREATE TABLE dossier_rollups (
    unit_id TEXT NOT NULL REFERENCES units(id),
    month DATE NOT NULL,
    dossiers BIGINT NOT NULL,
    rated_unsatisfied BIGINT NOT NULL,
    late BIGINT NOT NULL,
    unsatisfied_or_late BIGINT NOT NULL,
    PRIMARY KEY (unit_id, month)
);
