DROP TABLE counter_devices;
DROP TABLE counter_pairings;
DROP TABLE desk_registrations;
DROP TABLE zalo_tokens;
DROP TABLE phone_contacts;
DELETE FROM outbox WHERE channel <> 'email';
ALTER TABLE outbox DROP CONSTRAINT outbox_transaction_kind_channel_key;
ALTER TABLE outbox ADD CONSTRAINT outbox_transaction_id_kind_key UNIQUE (transaction_id, kind);
ALTER TABLE outbox DROP COLUMN channel;
