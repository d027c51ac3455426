-- The response export reads a form's answers in submission order, page by page: without
-- this index every page scanned and sorted the whole table.
CREATE INDEX responses_form_submitted_idx ON responses (form_code, submitted_at);
