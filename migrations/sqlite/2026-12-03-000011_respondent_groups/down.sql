-- Group answers cannot exist without their channel: they go with the groups.
DELETE FROM responses WHERE channel = 'group';
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt. Its rows wait in a
-- plain copy while `responses` is dropped and created again under the same name, so the foreign
-- keys of paper_forms and response_signals (deferred until commit) find every row again.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE responses_copy AS SELECT id, unit_id, procedure_id, form_code, form_version, channel, respondent_type, language, issued_at, opened_at, submitted_at, provenance, answers, status FROM responses;
DROP TABLE responses;
CREATE TABLE responses (
    id TEXT PRIMARY KEY NOT NULL,
    unit_id TEXT NOT NULL REFERENCES units(id),
    procedure_id TEXT REFERENCES procedures(id),
    form_code TEXT NOT NULL,
    form_version BIGINT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('qr', 'link', 'kiosk', 'paper', 'phone', 'interview')),
    respondent_type TEXT CHECK (respondent_type IN ('individual', 'organisation')),
    language TEXT NOT NULL CHECK (language IN ('vi', 'en')),
    issued_at TIMESTAMP,
    opened_at TIMESTAMP,
    submitted_at TIMESTAMP NOT NULL,
    provenance TEXT,
    answers TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'counted',
    FOREIGN KEY (form_code, form_version) REFERENCES form_versions(form_code, version)
);
INSERT INTO responses (id, unit_id, procedure_id, form_code, form_version, channel, respondent_type, language, issued_at, opened_at, submitted_at, provenance, answers, status) SELECT id, unit_id, procedure_id, form_code, form_version, channel, respondent_type, language, issued_at, opened_at, submitted_at, provenance, answers, status FROM responses_copy;
DROP TABLE responses_copy;
CREATE INDEX responses_unit_submitted_idx ON responses(unit_id, submitted_at);
CREATE INDEX responses_unit_form_idx ON responses(unit_id, form_code, submitted_at);
DROP TABLE campaign_links;
DELETE FROM survey_tokens WHERE campaign_id IS NOT NULL;
ALTER TABLE survey_tokens DROP COLUMN campaign_id;
DROP TABLE campaign_units;
DROP INDEX campaigns_group_idx;
DROP TABLE campaigns;
DROP TABLE respondent_groups;
