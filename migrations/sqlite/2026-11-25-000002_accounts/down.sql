DROP TABLE audit_head;
DROP TABLE audit_events;
DROP TABLE survey_periods;
DROP TABLE login_failures;
DROP TABLE sessions;
DROP TABLE users;
DROP TABLE collector_orgs;
