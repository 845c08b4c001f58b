-- Uploads issued by the HTTP API (`intake serve`): which tenant and user asked for which
-- key, under the file id the API hands out. The ledger tracks the object once it lands;
-- this row is what makes a file findable (and deletable) by its owner before and after.
-- The same in both backends (../sqlite and ../postgres).
CREATE TABLE uploads (
    file_id              TEXT    PRIMARY KEY,
    tenant               TEXT    NOT NULL,
    user_id              TEXT    NOT NULL,
    bucket               TEXT    NOT NULL,
    object_key           TEXT    NOT NULL,
    filename             TEXT    NOT NULL,
    content_type         TEXT    NOT NULL,
    size_bytes           BIGINT  NOT NULL,
    method               TEXT    NOT NULL,
    multipart_upload_id  TEXT,
    created_ms           BIGINT  NOT NULL,
    completed_ms         BIGINT,
    deletion_requested_ms BIGINT,
    UNIQUE (bucket, object_key)
);
CREATE INDEX uploads_by_tenant ON uploads (tenant, created_ms);
