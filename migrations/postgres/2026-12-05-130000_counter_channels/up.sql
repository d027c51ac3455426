-- SMS and Zalo invitations share the outbox with e-mail: one row per (transaction, kind,
-- channel).
ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'email'
    CHECK (channel IN ('email', 'sms', 'zalo'));
ALTER TABLE outbox DROP CONSTRAINT outbox_transaction_id_kind_key;
ALTER TABLE outbox ADD CONSTRAINT outbox_transaction_kind_channel_key
    UNIQUE (transaction_id, kind, channel);

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
