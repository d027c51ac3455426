-- Custody of paper forms in batches, keyed entries (double entry and adjudication), and the
-- provenance of paper responses.

CREATE TABLE paper_batches (
    id TEXT PRIMARY KEY NOT NULL,
    code TEXT NOT NULL UNIQUE,
    sample_id TEXT NOT NULL REFERENCES samples(id),
    unit_id TEXT NOT NULL REFERENCES units(id),
    collector_org_id TEXT NOT NULL REFERENCES collector_orgs(id),
    collector_name TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- One row per issued form; status follows custody: issued → delivered → returned → keyed → verified.
CREATE TABLE paper_forms (
    member_id TEXT PRIMARY KEY NOT NULL REFERENCES sample_members(id),
    batch_id TEXT NOT NULL REFERENCES paper_batches(id),
    status TEXT NOT NULL CHECK (status IN ('issued', 'delivered', 'returned', 'keyed', 'disputed', 'verified')),
    double_entry BOOLEAN NOT NULL,
    response_id TEXT UNIQUE REFERENCES responses(id),
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX paper_forms_batch_idx ON paper_forms(batch_id, status);

-- pass 1 and 2 are the two independent typings, pass 3 the adjudication.
CREATE TABLE paper_entries (
    id TEXT PRIMARY KEY NOT NULL,
    member_id TEXT NOT NULL REFERENCES sample_members(id),
    pass BIGINT NOT NULL CHECK (pass IN (1, 2, 3)),
    typist_id TEXT NOT NULL REFERENCES users(id),
    answers TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    saved_at TIMESTAMP NOT NULL,
    keystrokes BIGINT NOT NULL,
    UNIQUE (member_id, pass)
);
CREATE INDEX paper_entries_typist_idx ON paper_entries(typist_id, saved_at);

ALTER TABLE responses ADD COLUMN provenance TEXT;
