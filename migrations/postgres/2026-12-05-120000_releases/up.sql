-- Published releases (issue #18): an administrator freezes a period's results into an immutable,
-- signed snapshot. `document` holds the canonical JSON bytes exactly as signed; `sha256` is their
-- hex digest, `signature` the Ed25519 signature (base64) by `public_key` (base64, 32 bytes). A
-- later release of the same period corrects the one before it (`corrects`). Rows are never
-- updated or deleted by the service.

CREATE TABLE releases (
    id TEXT PRIMARY KEY NOT NULL,
    period TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    method_version TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    document TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    signature TEXT NOT NULL,
    public_key TEXT NOT NULL,
    corrects TEXT REFERENCES releases(id),
    UNIQUE (period, sequence)
);
CREATE INDEX releases_created_idx ON releases(created_at);

-- Published means published: the database refuses to change or delete a release.
CREATE FUNCTION releases_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'releases are immutable: publish a correction instead';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER releases_immutable BEFORE UPDATE OR DELETE ON releases
    FOR EACH ROW EXECUTE FUNCTION releases_immutable();
