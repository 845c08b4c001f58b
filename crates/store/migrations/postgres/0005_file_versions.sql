-- One file, one version. The first version of an uploads key that the validate stage sees
-- becomes the file; every later version under the same key (a reused upload URL, a client
-- retry racing the original, a PUT after deletion) is refused as `upload_reused`. The API,
-- `intake status`, `intake reprocess` and the catalog ask this table which version is the
-- file, so they never disagree. Rows are never deleted: a deleted file stays deleted.
-- The same in both backends (../sqlite and ../postgres).
CREATE TABLE file_versions (
    bucket       TEXT    NOT NULL,
    object_key   TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    accepted_ms  BIGINT  NOT NULL,
    PRIMARY KEY (bucket, object_key)
);

-- A ledger from before this rule: the version the API showed (the newest the ledger saw
-- that was not dropped as stale) is the file.
INSERT INTO file_versions (bucket, object_key, version, accepted_ms)
SELECT o.bucket, o.object_key, o.version, o.created_ms
FROM objects o
WHERE o.id = (SELECT max(n.id) FROM objects n
              WHERE n.bucket = o.bucket AND n.object_key = o.object_key AND n.state <> 'stale');
