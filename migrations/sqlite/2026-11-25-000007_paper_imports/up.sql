-- Files of paper answers typed elsewhere: a file imported once is recognised and refused again.
CREATE TABLE paper_imports (
    content_sha256 TEXT PRIMARY KEY NOT NULL,
    file_name TEXT NOT NULL,
    typist_id TEXT NOT NULL REFERENCES users(id),
    rows BIGINT NOT NULL,
    imported_at TIMESTAMP NOT NULL
);
