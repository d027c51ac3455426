DROP TABLE outbox;
ALTER TABLE transactions DROP COLUMN mail_opted_out;
ALTER TABLE units DROP COLUMN invitations_enabled;
