ALTER TABLE rating_cases DROP COLUMN contact_consented_at;
ALTER TABLE rating_cases DROP COLUMN contact;
