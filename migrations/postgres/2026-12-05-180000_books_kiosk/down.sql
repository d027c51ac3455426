-- The new channels fold back into the ones they came through.
UPDATE responses SET channel = 'link' WHERE channel IN ('sms', 'zalo');
UPDATE responses SET channel = 'qr' WHERE channel = 'book';
ALTER TABLE responses DROP CONSTRAINT responses_channel_check;
ALTER TABLE responses ADD CONSTRAINT responses_channel_check
    CHECK (channel IN ('qr', 'link', 'kiosk', 'paper', 'phone', 'interview', 'group'));
DROP TABLE kiosk_refusals;
DROP TABLE kiosk_taps;
DROP TABLE book_stickers;
DROP TABLE token_books;
