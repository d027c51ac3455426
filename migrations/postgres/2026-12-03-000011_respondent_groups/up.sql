-- Respondent groups (issue #8, item 5): named groups (council delegates, leaders, ...) invited
-- in campaigns to rate units with their own single-use links. Their answers are stored like any
-- response but kept out of the citizen index (status 'group', never in the rollups) unless the
-- group is configured to be included (then status 'counted', channel 'group').

CREATE TABLE respondent_groups (
    id TEXT PRIMARY KEY NOT NULL,
    code TEXT NOT NULL UNIQUE,
    name_vi TEXT NOT NULL,
    name_en TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    include_in_index BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE campaigns (
    id TEXT PRIMARY KEY NOT NULL,
    group_id TEXT NOT NULL REFERENCES respondent_groups(id),
    name_vi TEXT NOT NULL,
    name_en TEXT NOT NULL,
    form_code TEXT NOT NULL,
    form_version BIGINT NOT NULL,
    period_id TEXT REFERENCES survey_periods(id),
    starts_on DATE NOT NULL,
    ends_on DATE NOT NULL,
    invitees BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX campaigns_group_idx ON campaigns(group_id);

CREATE TABLE campaign_units (
    campaign_id TEXT NOT NULL REFERENCES campaigns(id),
    unit_id TEXT NOT NULL REFERENCES units(id),
    PRIMARY KEY (campaign_id, unit_id)
);

-- One single-use link per invitee and unit. The token is recomputed from the link id with the
-- server secret (never stored); invitees are numbers, never names.
CREATE TABLE campaign_links (
    id TEXT PRIMARY KEY NOT NULL,
    campaign_id TEXT NOT NULL REFERENCES campaigns(id),
    invitee BIGINT NOT NULL,
    unit_id TEXT NOT NULL REFERENCES units(id),
    token_hash TEXT NOT NULL UNIQUE REFERENCES survey_tokens(token_hash),
    UNIQUE (campaign_id, invitee, unit_id)
);

-- Which campaign a survey token belongs to (NULL for a dossier's token): read with the token,
-- so the survey page knows without another query.
ALTER TABLE survey_tokens ADD COLUMN campaign_id TEXT;

-- Group answers get their own channel 'group' (neither counter nor independent), and carry their
-- group and campaign (NULL for citizens' answers).
ALTER TABLE responses DROP CONSTRAINT responses_channel_check;
ALTER TABLE responses ADD CONSTRAINT responses_channel_check
    CHECK (channel IN ('qr', 'link', 'kiosk', 'paper', 'phone', 'interview', 'group'));
ALTER TABLE responses ADD COLUMN respondent_group_id TEXT;
ALTER TABLE responses ADD COLUMN campaign_id TEXT;
-- Partial: citizens' answers (nearly all rows) add nothing to it.
CREATE INDEX responses_campaign_idx ON responses(campaign_id, unit_id) WHERE campaign_id IS NOT NULL;
