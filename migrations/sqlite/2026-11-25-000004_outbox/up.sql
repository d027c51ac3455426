-- E-mail invitations and reminders, written in the same transaction as what causes them and
-- sent by a background task. The address itself stays only on the transaction and is erased as
-- soon as no more mail is due.

ALTER TABLE units ADD COLUMN invitations_enabled BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE transactions ADD COLUMN mail_opted_out BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE outbox (
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
    UNIQUE (transaction_id, kind)
);
CREATE INDEX outbox_due_idx ON outbox(status, due_at);
CREATE INDEX outbox_unit_idx ON outbox(unit_id, status);
