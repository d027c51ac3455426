-- Several instances share one outbox: a sender claims a message for a limited time (a lease)
-- and renews it before each attempt. An instance starting up takes back only messages whose
-- lease ran out (their sender died), never those another live instance is sending.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until TIMESTAMP;
