-- Group answers cannot exist without their channel: they go with the groups.
DELETE FROM responses WHERE channel = 'group';
DROP INDEX responses_campaign_idx;
ALTER TABLE responses DROP COLUMN campaign_id;
ALTER TABLE responses DROP COLUMN respondent_group_id;
ALTER TABLE responses DROP CONSTRAINT responses_channel_check;
ALTER TABLE responses ADD CONSTRAINT responses_channel_check
    CHECK (channel IN ('qr', 'link', 'kiosk', 'paper', 'phone', 'interview'));
DROP TABLE campaign_links;
DELETE FROM survey_tokens WHERE campaign_id IS NOT NULL;
ALTER TABLE survey_tokens DROP COLUMN campaign_id;
DROP TABLE campaign_units;
DROP INDEX campaigns_group_idx;
DROP TABLE campaigns;
DROP TABLE respondent_groups;
