-- Back to one row per answer. Daily rollups are recreated empty: the previous version read them
-- only for ranges that are not whole months.
DROP TABLE dossier_rollups;

CREATE TABLE rollups (
    unit_id TEXT NOT NULL REFERENCES units(id),
    form_code TEXT NOT NULL,
    form_version BIGINT NOT NULL,
    day DATE NOT NULL,
    channel TEXT NOT NULL,
    respondent_type TEXT NOT NULL,
    question_code TEXT NOT NULL,
    level BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (unit_id, form_code, form_version, day, channel, respondent_type, question_code, level)
);

CREATE TABLE answers (
    response_id TEXT NOT NULL REFERENCES responses(id),
    question_code TEXT NOT NULL,
    value_int BIGINT,
    value_text TEXT,
    PRIMARY KEY (response_id, question_code)
);

INSERT INTO answers (response_id, question_code, value_int, value_text)
SELECT r.id, j.key,
    CASE json_typeof(j.value) WHEN 'number' THEN (j.value #>> '{}')::bigint WHEN 'array' THEN (j.value ->> 0)::bigint END,
    CASE json_typeof(j.value) WHEN 'string' THEN j.value #>> '{}' WHEN 'array' THEN j.value ->> 1 END
FROM responses r, json_each(r.answers::json) j;

ALTER TABLE responses DROP COLUMN answers;
