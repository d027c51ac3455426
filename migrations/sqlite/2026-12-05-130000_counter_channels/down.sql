-- Phone messages go with their channel; the outbox is rebuilt with its old constraints.
DROP TABLE counter_devices;
DROP TABLE counter_pairings;
DROP TABLE desk_registrations;
DROP TABLE zalo_tokens;
DROP TABLE phone_contacts;
DELETE FROM outbox WHERE channel <> 'email';
CREATE TABLE outbox_old (
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
    UNIQUE (transaction_id, kind)
);
INSERT INTO outbox_old (id, kind, transaction_id, unit_id, message_id, status, attempts, due_at,
    last_error, created_at, sent_at, claimed_by, claimed_until)
SELECT id, kind, transaction_id, unit_id, message_id, status, attempts, due_at, last_error,
    created_at, sent_at, claimed_by, claimed_until FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_old RENAME TO outbox;
CREATE INDEX outbox_due_idx ON outbox(status, due_at);
CREATE INDEX outbox_unit_idx ON outbox(unit_id, status);
