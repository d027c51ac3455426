DROP INDEX responses_campaign_idx;
ALTER TABLE responses DROP COLUMN campaign_id;
ALTER TABLE responses DROP COLUMN respondent_group_id;
ALTER TABLE survey_tokens DROP COLUMN campaign_id;
DROP TABLE campaign_links;
DROP TABLE campaign_units;
DROP INDEX campaigns_group_idx;
DROP TABLE campaigns;
DROP TABLE respondent_groups;
