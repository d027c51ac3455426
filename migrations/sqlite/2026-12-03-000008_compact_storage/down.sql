-- Back to one row per answer. The previous version's rollup tables are recreated empty: their
-- local months need the UTC offset, which SQL cannot see (the responses themselves are kept).
DROP TABLE dossier_rollups;
DROP TABLE rollup_procedure_cells;
DROP TABLE rollup_cells;

CREATE TABLE rollups_monthly (
    unit_id TEXT NOT NULL REFERENCES units(id),
    form_code TEXT NOT NULL,
    form_version BIGINT NOT NULL,
    month DATE NOT NULL,
    channel TEXT NOT NULL,
    respondent_type TEXT NOT NULL,
    question_code TEXT NOT NULL,
    level BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (unit_id, form_code, form_version, month, channel, respondent_type, question_code, level)
);

CREATE TABLE rollups_procedure (
    unit_id TEXT NOT NULL REFERENCES units(id),
    form_code TEXT NOT NULL,
    form_version BIGINT NOT NULL,
    month DATE NOT NULL,
    procedure_id TEXT NOT NULL,
    question_code TEXT NOT NULL,
    level BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (unit_id, form_code, form_version, month, procedure_id, question_code, level)
);

CREATE TABLE rollup_scores (
    grain TEXT NOT NULL CHECK (grain IN ('day', 'month')),
    period DATE NOT NULL,
    unit_id TEXT NOT NULL REFERENCES units(id),
    form_code TEXT NOT NULL,
    form_version BIGINT NOT NULL,
    channel TEXT NOT NULL,
    respondent_type TEXT NOT NULL,
    element_code TEXT NOT NULL,
    n BIGINT NOT NULL,
    score_sum DOUBLE PRECISION NOT NULL,
    score_sq_sum DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (grain, period, unit_id, form_code, form_version, channel, respondent_type, element_code)
);

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
    CASE j.type WHEN 'integer' THEN j.value WHEN 'array' THEN json_extract(j.value, '$[0]') END,
    CASE j.type WHEN 'text' THEN j.value WHEN 'array' THEN json_extract(j.value, '$[1]') END
FROM responses r, json_each(r.answers) j;

ALTER TABLE responses DROP COLUMN answers;
