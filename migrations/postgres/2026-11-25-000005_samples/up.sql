-- Random samples of served people for the independent paper channel. Each drawn dossier gets a
-- paper form with an unguessable serial; the draw is reproducible from its recorded seed.

CREATE TABLE samples (
    id TEXT PRIMARY KEY NOT NULL,
    period_id TEXT NOT NULL REFERENCES survey_periods(id),
    seed BIGINT NOT NULL,
    margin DOUBLE PRECISION NOT NULL,
    quota BIGINT,
    reserve_share DOUBLE PRECISION NOT NULL,
    by_procedure BOOLEAN NOT NULL,
    form_code TEXT NOT NULL,
    form_version BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE sample_units (
    sample_id TEXT NOT NULL REFERENCES samples(id),
    unit_id TEXT NOT NULL REFERENCES units(id),
    population BIGINT NOT NULL,
    required BIGINT NOT NULL,
    drawn BIGINT NOT NULL,
    reserve BIGINT NOT NULL,
    PRIMARY KEY (sample_id, unit_id)
);

CREATE TABLE sample_members (
    id TEXT PRIMARY KEY NOT NULL,
    sample_id TEXT NOT NULL REFERENCES samples(id),
    period_id TEXT NOT NULL REFERENCES survey_periods(id),
    unit_id TEXT NOT NULL REFERENCES units(id),
    transaction_id TEXT NOT NULL REFERENCES transactions(id),
    role TEXT NOT NULL CHECK (role IN ('main', 'reserve')),
    position BIGINT NOT NULL,
    serial TEXT NOT NULL UNIQUE,
    UNIQUE (period_id, transaction_id)
);
CREATE INDEX sample_members_sample_idx ON sample_members(sample_id, unit_id, role, position);
