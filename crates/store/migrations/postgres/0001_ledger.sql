-- The state ledger (PostgreSQL). Keep in step with ../sqlite/0001_ledger.sql: the same
-- tables and columns, only identity columns and collations are spelled differently.
-- Times are epoch milliseconds; ids and names are TEXT.

-- Every version the pipeline has seen, and where it is in the state machine.
-- `id` orders versions by when the ledger first saw them (S3 version ids are opaque).
CREATE TABLE objects (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bucket      TEXT    NOT NULL,
    object_key  TEXT    NOT NULL,
    version     TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    created_ms  BIGINT  NOT NULL,
    updated_ms  BIGINT  NOT NULL,
    UNIQUE (bucket, object_key, version)
);

-- One row per (version, stage): who may run it, until when, and whether it is done.
-- Claims are taken with a conditional upsert on this primary key.
CREATE TABLE stage_claims (
    bucket          TEXT    NOT NULL,
    object_key      TEXT    NOT NULL,
    version         TEXT    NOT NULL,
    stage           TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('claimed', 'released', 'done')),
    worker          TEXT    NOT NULL,
    attempt         BIGINT  NOT NULL,
    claimed_ms      BIGINT  NOT NULL,
    lease_until_ms  BIGINT  NOT NULL,
    outcome         TEXT,
    PRIMARY KEY (bucket, object_key, version, stage)
);

-- Outcome messages written with the result, cleared once published to SNS.
CREATE TABLE outbox (
    bucket        TEXT    NOT NULL,
    object_key    TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    stage         TEXT    NOT NULL,
    outcome_json  TEXT    NOT NULL,
    created_ms    BIGINT  NOT NULL,
    published_ms  BIGINT,
    PRIMARY KEY (bucket, object_key, version, stage)
);
CREATE INDEX outbox_unpublished ON outbox (created_ms) WHERE published_ms IS NULL;

-- Append-only history: completions, retryable failures, stale events.
CREATE TABLE transitions (
    id           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bucket       TEXT    NOT NULL,
    object_key   TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    stage        TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('completed', 'released', 'stale')),
    outcome      TEXT    NOT NULL,
    code         TEXT,
    detail       TEXT,
    attempt      BIGINT  NOT NULL,
    worker       TEXT    NOT NULL,
    started_ms   BIGINT  NOT NULL,
    finished_ms  BIGINT  NOT NULL
);
CREATE INDEX transitions_by_version ON transitions (bucket, object_key, version, stage);

-- The greatest S3 event sequencer seen per bucket+key. `sequencer` is normalised
-- (upper-case, leading zeros stripped) so that comparing (length, text) compares values;
-- byte order ("C"), not the locale's, decides between equal-length strings.
CREATE TABLE sequencers (
    bucket         TEXT    NOT NULL,
    object_key     TEXT    NOT NULL,
    sequencer      TEXT    COLLATE "C" NOT NULL,
    raw_sequencer  TEXT    NOT NULL,
    version        TEXT    NOT NULL,
    updated_ms     BIGINT  NOT NULL,
    PRIMARY KEY (bucket, object_key)
);
