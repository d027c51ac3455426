-- Compact storage for ten million responses and more:
-- * answers move into one JSON object on the response row (one insert per response, not ~30);
-- * daily rollups go: at the density of a real province they held about as many rows as the raw
--   answers. Reports read monthly rollups, and the partial months at the edges of a custom
--   range from the responses of those days only;
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
DELETE FROM rollup_scores WHERE grain = 'day';

CREATE TABLE dossier_rollups (
    unit_id TEXT NOT NULL REFERENCES units(id),
    month DATE NOT NULL,
    dossiers BIGINT NOT NULL,
    rated_unsatisfied BIGINT NOT NULL,
    late BIGINT NOT NULL,
    unsatisfied_or_late BIGINT NOT NULL,
    PRIMARY KEY (unit_id, month)
);
