-- The catalog: one record per promoted object version, with everything the pipeline
-- learned about it. Written once by the catalog stage (a re-delivery inserts nothing),
-- updated by the archive stage (storage class, store version), removed by a deletion.
-- The same in both backends (../sqlite and ../postgres).
CREATE TABLE catalog (
    object_id        TEXT    PRIMARY KEY,
    upload_bucket    TEXT    NOT NULL,
    upload_key       TEXT    NOT NULL,
    upload_version   TEXT    NOT NULL,
    tenant           TEXT,
    user_id          TEXT,
    filename         TEXT,
    store_bucket     TEXT    NOT NULL,
    store_key        TEXT    NOT NULL,
    store_version    TEXT,
    size_bytes       BIGINT  NOT NULL,
    content_type     TEXT,
    class            TEXT,
    sha256           TEXT    NOT NULL,
    width            BIGINT,
    height           BIGINT,
    renditions_json  TEXT    NOT NULL,
    scan_verdict     TEXT,
    scan_engine      TEXT,
    scanned_at       TEXT,
    storage_class    TEXT    NOT NULL,
    archive_note     TEXT,
    cataloged_ms     BIGINT  NOT NULL,
    updated_ms       BIGINT  NOT NULL,
    UNIQUE (upload_bucket, upload_key, upload_version)
);
CREATE INDEX catalog_by_tenant ON catalog (tenant, cataloged_ms);
CREATE INDEX catalog_by_store_key ON catalog (store_bucket, store_key);
