DROP TABLE case_actions;
DROP TABLE rating_cases;
DROP TABLE response_signals;
ALTER TABLE responses DROP COLUMN status;
ALTER TABLE survey_tokens DROP COLUMN issuer_device;
ALTER TABLE survey_tokens DROP COLUMN issuer_network;
