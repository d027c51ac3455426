-- Coarser and richer rollups for reports, all maintained in the writer's transaction:
-- month totals (reports by month, quarter, year read 12 rows per cell instead of 365),
-- month totals by procedure, and per-respondent element scores (count, sum, sum of squares)
-- for intervals that respect respondents answering several items.

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

-- grain 'day' (period = the day) or 'month' (period = its first day).
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

CREATE INDEX responses_unit_form_idx ON responses(unit_id, form_code, submitted_at);
