-- A citizen who explicitly asked to be contacted about a bad rating (issue #8): the phone or
-- e-mail is kept on the case only (never on the response), with the time of the consent, and
-- erased when the case is closed. Both stay NULL for every other case.
ALTER TABLE rating_cases ADD COLUMN contact TEXT;
ALTER TABLE rating_cases ADD COLUMN contact_consented_at TIMESTAMP;
