-- Core tables of the e-survey path. Portable types only (TEXT ids, naive UTC TIMESTAMP,
-- BIGINT, TEXT enums with CHECK) so the PostgreSQL migration mirrors this one line by line.

CREATE TABLE app_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE units (
    id TEXT PRIMARY KEY NOT NULL,
    code TEXT NOT NULL UNIQUE,
    name_vi TEXT NOT NULL,
    name_en TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('province', 'department', 'centre', 'commune', 'other')),
    parent_id TEXT REFERENCES units(id),
    valid_from DATE NOT NULL,
    valid_to DATE,
    merged_into_id TEXT REFERENCES units(id),
    counter_form TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX units_parent_idx ON units(parent_id);

CREATE TABLE procedures (
    id TEXT PRIMARY KEY NOT NULL,
    code TEXT NOT NULL UNIQUE,
    name_vi TEXT NOT NULL,
    name_en TEXT NOT NULL,
    sector TEXT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    unit_id TEXT NOT NULL REFERENCES units(id),
    key_hash TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);

CREATE TABLE form_versions (
    form_code TEXT NOT NULL,
    version BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('sipas', 'transaction')),
    content_sha256 TEXT NOT NULL,
    source TEXT NOT NULL,
    loaded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (form_code, version)
);

CREATE TABLE transactions (
    id TEXT PRIMARY KEY NOT NULL,
    unit_id TEXT NOT NULL REFERENCES units(id),
    dossier_code TEXT NOT NULL,
    procedure_id TEXT NOT NULL REFERENCES procedures(id),
    received_at TIMESTAMP NOT NULL,
    due_at TIMESTAMP,
    completed_at TIMESTAMP NOT NULL,
    email TEXT,
    form_code TEXT NOT NULL,
    form_version BIGINT NOT NULL,
    rating BIGINT,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (unit_id, dossier_code),
    FOREIGN KEY (form_code, form_version) REFERENCES form_versions(form_code, version)
);
CREATE INDEX transactions_unit_completed_idx ON transactions(unit_id, completed_at);

-- One row per issued survey link. Only the SHA-256 of the token is kept.
CREATE TABLE survey_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    transaction_id TEXT UNIQUE REFERENCES transactions(id),
    unit_id TEXT NOT NULL REFERENCES units(id),
    procedure_id TEXT REFERENCES procedures(id),
    form_code TEXT NOT NULL,
    form_version BIGINT NOT NULL,
    issued_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    spent_at TIMESTAMP,
    FOREIGN KEY (form_code, form_version) REFERENCES form_versions(form_code, version)
);

-- Every channel's answers land here; channel and provenance are columns.
-- Deliberately no link to the transaction or token: a response cannot be traced to a person.
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
    FOREIGN KEY (form_code, form_version) REFERENCES form_versions(form_code, version)
);
CREATE INDEX responses_unit_submitted_idx ON responses(unit_id, submitted_at);

CREATE TABLE answers (
    response_id TEXT NOT NULL REFERENCES responses(id),
    question_code TEXT NOT NULL,
    value_int BIGINT,
    value_text TEXT,
    PRIMARY KEY (response_id, question_code)
);

-- Pre-aggregated counts maintained in the same transaction as each response, so reports
-- never scan raw answers. question_code '_responses' counts whole responses (level 0).
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
