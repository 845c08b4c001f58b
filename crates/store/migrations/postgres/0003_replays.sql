-- Every DLQ replay an operator ran (`intake dlq replay`): who, when, which stage, with
-- which filter, and what it did. Dry runs are recorded too. Keep in step with the other
-- backend's 0003_replays.sql; only the identity column is spelled differently.
CREATE TABLE replays (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stage         TEXT    NOT NULL,
    requested_by  TEXT    NOT NULL,
    filter        TEXT    NOT NULL,
    method        TEXT    NOT NULL,
    dry_run       BIGINT  NOT NULL,
    matched       BIGINT  NOT NULL,
    moved         BIGINT  NOT NULL,
    started_ms    BIGINT  NOT NULL,
    finished_ms   BIGINT  NOT NULL
);
