-- SMS and Zalo invitations share the outbox with e-mail: one row per (transaction, kind,
-- channel). SQLite cannot change a table's constraints in place, so the outbox is rebuilt.
CREATE TABLE outbox_new (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('invitation', 'reminder')),
    transaction_id TEXT NOT NULL REFERENCES transactions(id),
    unit_id TEXT NOT NULL REFERENCES units(id),
    message_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'cancelled')),
    attempts BIGINT NOT NULL,
    due_at TIMESTAMP NOT NULL,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    claimed_by TEXT,
    claimed_until TIMESTAMP,
    channel TEXT NOT NULL DEFAULT 'email' CHECK (channel IN ('email', 'sms', 'zalo')),
    UNIQUE (transaction_id, kind, channel)
);
INSERT INTO outbox_new (id, kind, transaction_id, unit_id, message_id, status, attempts, due_at,
    last_error, created_at, sent_at, claimed_by, claimed_until, channel)
SELECT id, kind, transaction_id, unit_id, message_id, status, attempts, due_at, last_error,
    created_at, sent_at, claimed_by, claimed_until, 'email' FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due_idx ON outbox(status, due_at);
CREATE INDEX outbox_unit_idx ON outbox(unit_id, status);

-- A citizen's phone number, kept only while an SMS or Zalo message for the dossier is due
-- (erased like e-mail addresses); a separate table so the dossier row never carries it.
CREATE TABLE phone_contacts (
    transaction_id TEXT PRIMARY KEY NOT NULL REFERENCES transactions(id),
    phone TEXT NOT NULL
);

-- Zalo's OAuth tokens, shared by all instances: a refresh token is single-use, so the newest
-- one must be where every instance finds it (and survive restarts).
CREATE TABLE zalo_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    seed_hash TEXT NOT NULL,
    refresh_token TEXT NOT NULL,
    access_token TEXT,
    access_expires_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);

-- Counter desks: which transaction a desk registered last (the citizen-facing screen shows
-- its QR), and the devices paired to a desk.
CREATE TABLE desk_registrations (
    transaction_id TEXT PRIMARY KEY NOT NULL REFERENCES transactions(id),
    unit_id TEXT NOT NULL REFERENCES units(id),
    desk TEXT NOT NULL,
    registered_at TIMESTAMP NOT NULL
);
CREATE INDEX desk_registrations_latest_idx ON desk_registrations(unit_id, desk, registered_at);

CREATE TABLE counter_pairings (
    code_hash TEXT PRIMARY KEY NOT NULL,
    unit_id TEXT NOT NULL REFERENCES units(id),
    desk TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);

CREATE TABLE counter_devices (
    id TEXT PRIMARY KEY NOT NULL,
    unit_id TEXT NOT NULL REFERENCES units(id),
    desk TEXT NOT NULL,
    credential_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
