-- Trustworthy results (issue #8): integrity signals of every e-survey response, quarantine of
-- suspect responses (held out of the rollups, never deleted), and cases opened by bad ratings.

-- Who registered a dossier, as keyed hashes (HMAC under the server secret) of the counter's
-- network address and of its address with user agent: never the raw address.
ALTER TABLE survey_tokens ADD COLUMN issuer_network TEXT;
ALTER TABLE survey_tokens ADD COLUMN issuer_device TEXT;

-- 'counted' responses are in the rollups; 'held' ones wait for review; 'rejected' ones stay
-- out for good. Readers that count responses directly filter on it.
ALTER TABLE responses ADD COLUMN status TEXT NOT NULL DEFAULT 'counted';

-- One row per screened response: the facts behind each signal and its review.
CREATE TABLE response_signals (
    response_id TEXT PRIMARY KEY NOT NULL REFERENCES responses(id),
    unit_id TEXT NOT NULL REFERENCES units(id),
    channel TEXT NOT NULL,
    submitted_at TIMESTAMP NOT NULL,
    seconds_from_issue BIGINT,
    seconds_answering BIGINT,
    questions_answered BIGINT NOT NULL,
    straight_line BOOLEAN NOT NULL,
    same_device BOOLEAN NOT NULL,
    same_network BOOLEAN NOT NULL,
    network_hash TEXT,
    burst BOOLEAN NOT NULL,
    signals TEXT NOT NULL,
    review TEXT CHECK (review IN ('held', 'accepted', 'rejected')),
    reviewed_by TEXT,
    reviewed_at TIMESTAMP,
    review_reason TEXT
);
CREATE INDEX response_signals_unit_idx ON response_signals(unit_id, submitted_at);
CREATE INDEX response_signals_network_idx ON response_signals(network_hash, submitted_at);
CREATE INDEX response_signals_review_idx ON response_signals(review, unit_id);

-- A bad overall rating opens a case for the agency: only the answers and the comment, never
-- the token, dossier or contact of the citizen.
CREATE TABLE rating_cases (
    id TEXT PRIMARY KEY NOT NULL,
    unit_id TEXT NOT NULL REFERENCES units(id),
    form_code TEXT NOT NULL,
    form_version BIGINT NOT NULL,
    overall_level BIGINT NOT NULL,
    answers TEXT NOT NULL,
    comment TEXT,
    opened_at TIMESTAMP NOT NULL,
    due_on DATE NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    closed_at TIMESTAMP
);
CREATE INDEX rating_cases_unit_idx ON rating_cases(unit_id, status, due_on);

CREATE TABLE case_actions (
    id TEXT PRIMARY KEY NOT NULL,
    case_id TEXT NOT NULL REFERENCES rating_cases(id),
    at TIMESTAMP NOT NULL,
    actor_name TEXT NOT NULL,
    note TEXT NOT NULL,
    closes BOOLEAN NOT NULL
);
CREATE INDEX case_actions_case_idx ON case_actions(case_id, at);
