-- Offline token books: a book of `size` single-use stickers for one unit. The stickers' tokens
-- are never stored: each is a MAC of (book number, serial, unit) under the server secret, so a
-- sticker is checked by its signature and only becomes a row when it is used or attached.
CREATE TABLE token_books (
    id TEXT PRIMARY KEY NOT NULL,
    number BIGINT NOT NULL UNIQUE,
    unit_id TEXT NOT NULL REFERENCES units(id),
    form_code TEXT NOT NULL,
    form_version BIGINT NOT NULL,
    size BIGINT NOT NULL CHECK (size > 0),
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX token_books_unit_idx ON token_books(unit_id, created_at);

-- A sticker that was answered or attached to a dossier: the answer (its response), the rating
-- it gave (for a dossier attached later, Decision 766) and the dossier it went with.
CREATE TABLE book_stickers (
    book_id TEXT NOT NULL REFERENCES token_books(id),
    serial BIGINT NOT NULL,
    transaction_id TEXT UNIQUE REFERENCES transactions(id),
    response_id TEXT,
    rating BIGINT,
    answered_at TIMESTAMP,
    attached_at TIMESTAMP,
    PRIMARY KEY (book_id, serial)
);

-- One-tap kiosk answers: not SIPAS form answers, so not responses; kept apart from the index
-- unless the province includes them (SIPAS_KIOSK_IN_INDEX).
CREATE TABLE kiosk_taps (
    id TEXT PRIMARY KEY NOT NULL,
    unit_id TEXT NOT NULL REFERENCES units(id),
    desk TEXT NOT NULL,
    device_id TEXT NOT NULL REFERENCES counter_devices(id),
    face BIGINT NOT NULL,
    faces BIGINT NOT NULL CHECK (faces IN (3, 5)),
    follow_up TEXT,
    tapped_at TIMESTAMP NOT NULL
);
CREATE INDEX kiosk_taps_unit_idx ON kiosk_taps(unit_id, tapped_at);
CREATE INDEX kiosk_taps_device_idx ON kiosk_taps(device_id, tapped_at);

-- Taps refused by the per-device limit, per device and minute: a burst of them is an integrity
-- signal for the unit.
CREATE TABLE kiosk_refusals (
    device_id TEXT NOT NULL REFERENCES counter_devices(id),
    minute TIMESTAMP NOT NULL,
    unit_id TEXT NOT NULL REFERENCES units(id),
    refused BIGINT NOT NULL,
    PRIMARY KEY (device_id, minute)
);
CREATE INDEX kiosk_refusals_unit_idx ON kiosk_refusals(unit_id, minute);

-- Answers reached through an SMS or Zalo invitation, and from a token book, get their own
-- channels (counter channels, reported apart).
ALTER TABLE responses DROP CONSTRAINT responses_channel_check;
ALTER TABLE responses ADD CONSTRAINT responses_channel_check
    CHECK (channel IN ('qr', 'link', 'kiosk', 'paper', 'phone', 'interview', 'group', 'sms', 'zalo', 'book'));
