-- The new channels fold back into the ones they came through; the table is rebuilt with the
-- former CHECK constraint.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE responses_copy AS SELECT id, unit_id, procedure_id, form_code, form_version, channel, respondent_type, language, issued_at, opened_at, submitted_at, provenance, answers, status, respondent_group_id, campaign_id FROM responses;
DROP TABLE responses;
CREATE TABLE responses (
    id TEXT PRIMARY KEY NOT NULL,
    unit_id TEXT NOT NULL REFERENCES units(id),
    procedure_id TEXT REFERENCES procedures(id),
    form_code TEXT NOT NULL,
    form_version BIGINT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('qr', 'link', 'kiosk', 'paper', 'phone', 'interview', 'group')),
    respondent_type TEXT CHECK (respondent_type IN ('individual', 'organisation')),
    language TEXT NOT NULL CHECK (language IN ('vi', 'en')),
    issued_at TIMESTAMP,
    opened_at TIMESTAMP,
    submitted_at TIMESTAMP NOT NULL,
    provenance TEXT,
    answers TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'counted',
    respondent_group_id TEXT,
    campaign_id TEXT,
    FOREIGN KEY (form_code, form_version) REFERENCES form_versions(form_code, version)
);
INSERT INTO responses (id, unit_id, procedure_id, form_code, form_version, channel, respondent_type, language, issued_at, opened_at, submitted_at, provenance, answers, status, respondent_group_id, campaign_id) SELECT id, unit_id, procedure_id, form_code, form_version, CASE channel WHEN 'sms' THEN 'link' WHEN 'zalo' THEN 'link' WHEN 'book' THEN 'qr' ELSE channel END, respondent_type, language, issued_at, opened_at, submitted_at, provenance, answers, status, respondent_group_id, campaign_id FROM responses_copy;
DROP TABLE responses_copy;
CREATE INDEX responses_unit_submitted_idx ON responses(unit_id, submitted_at);
CREATE INDEX responses_unit_form_idx ON responses(unit_id, form_code, submitted_at);
CREATE INDEX responses_campaign_idx ON responses(campaign_id, unit_id) WHERE campaign_id IS NOT NULL;
CREATE INDEX responses_form_submitted_idx ON responses (form_code, submitted_at);
DROP TABLE kiosk_refusals;
DROP TABLE kiosk_taps;
DROP TABLE book_stickers;
DROP TABLE token_books;
